"""People for the uncertain band: which images go to review, Label Studio tasks and the merge of
reviewers' answers back into a run."""
