"""Within-image AUC: only pairs of one image count, ties count half."""

from tagllm.demo_model.binding import pairwise_auc


def test_pairs_are_ranked_within_each_image_only():
    # Each image ranks its drawn class first, but image b's scores are all lower than image a's:
    # a pooled AUC would be hurt by that, a within-image one is not.
    a = [(0.9, True), (0.8, False)]
    b = [(0.3, True), (0.1, False), (0.2, False)]
    assert pairwise_auc([a, b]) == 1.0
    assert pairwise_auc([[(0.1, True), (0.9, False)]]) == 0.0


def test_ties_count_half_and_images_without_both_kinds_are_left_out():
    assert pairwise_auc([[(0.5, True), (0.5, False)], [(0.7, True)], [(0.2, False)]]) == 0.5
    assert pairwise_auc([[(0.4, False)]]) == 0.5  # no pair at all: chance
