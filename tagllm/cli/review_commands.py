"""`tagllm calibrate | review push | review pull`: calibrated scores and people for the uncertain band."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tagllm.calibration.fit import FitSettings
from tagllm.calibration.thresholds import Target
from tagllm.metrics.cost import DEFAULT_GPU_PRICE_PER_HOUR, DEFAULT_HUMAN_COST_PER_IMAGE

DEFAULT_BAND = "0.2:0.8"


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _gold(args, vocabulary):
    from tagllm.datasets.readers import read_labels
    from tagllm.eval.runs import map_gold, read_label_map

    label_map = read_label_map(args.label_map) if args.label_map else None
    gold, _ = map_gold(read_labels(args.gold), vocabulary, label_map)
    return gold


def _calibrated(report, name: str | None):
    """The report's vocabulary under `name` (default: its own; NAME-calibrated for a built-in,
    which cannot be registered again under its name)."""
    from tagllm.vocab import builtin_names
    from tagllm.vocab.validation import revise

    vocabulary = report.vocabulary
    base = vocabulary.name
    name = name or (f"{base}-calibrated" if base in builtin_names() else base)
    return vocabulary if name == base else revise(vocabulary, name=name)


def cmd_calibrate(args) -> int:
    import dataclasses

    from tagllm.bulk.run import RunDirectory, RunError
    from tagllm.calibration.calibrate import calibrate_vocabulary, samples_from_results, summary_markdown
    from tagllm.cli.eval_commands import _run_vocabulary
    from tagllm.datasets.readers import DatasetError
    from tagllm.eval.runs import EvalError
    from tagllm.vocab import VocabularyError

    try:
        target = Target.parse(args.target)
        settings = FitSettings(prior_strength=args.prior_strength, method=args.method)
        vocabulary = _run_vocabulary([args.run], args.vocab)
        gold = _gold(args, vocabulary)
        records = RunDirectory(args.run).results()
        samples = samples_from_results(((r.image, r.result.verifications) for r in records), gold)
        source = args.source or args.run
        report = calibrate_vocabulary(vocabulary, samples, gold, target, settings, source=source)
        calibrated = _calibrated(report, args.name)
    except (DatasetError, RunError, EvalError, VocabularyError, ValueError) as exc:
        return _error(str(exc))
    report = dataclasses.replace(report, vocabulary=calibrated)
    text = summary_markdown(report)
    print(text)
    if args.report:
        Path(args.report).write_text(text, encoding="utf-8")
    out = Path(args.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(calibrated.to_yaml(), encoding="utf-8")
    except OSError as exc:
        return _error(f"{out}: cannot write: {exc.strerror}")
    print(f"wrote {out}: vocabulary {calibrated.name} {calibrated.full_version}", file=sys.stderr)
    return 0


def _records_and_vocabulary(args):
    from tagllm.bulk.run import RunDirectory
    from tagllm.cli.eval_commands import _run_vocabulary

    run = RunDirectory(args.run)
    return run, run.results(), _run_vocabulary([args.run], args.vocab)


def cmd_review_plan(args) -> int:
    from tagllm.bulk.run import RunError
    from tagllm.review.band import Band
    from tagllm.review.plan import plan_band, plan_markdown
    from tagllm.vocab import VocabularyError

    try:
        bands = [Band.parse(b) for b in args.band or [DEFAULT_BAND]]
        _, records, _ = _records_and_vocabulary(args)
    except (RunError, VocabularyError, ValueError) as exc:
        return _error(str(exc))
    plans = [plan_band(records, b, args.gpu_price, args.human_price, args.max_images) for b in bands]
    print(plan_markdown(plans, args.human_price))
    return 0


def _client(args, manifest: dict | None = None):
    from tagllm.review.labelstudio import LabelStudioClient

    url = args.url or (manifest or {}).get("url") or os.environ.get("LABEL_STUDIO_URL", "")
    token = args.token or os.environ.get("LABEL_STUDIO_API_KEY", "")
    return LabelStudioClient(url, token)


def cmd_review_push(args) -> int:
    from tagllm.bulk.run import RunError
    from tagllm.review.band import Band, select
    from tagllm.review.labelstudio import LabelStudioError
    from tagllm.review.plan import plan_band, plan_markdown
    from tagllm.review.tasks import labeling_config, task
    from tagllm.vocab import VocabularyError

    try:
        band = Band.parse(args.band)
        run, records, vocabulary = _records_and_vocabulary(args)
        chosen = select(records, band, args.max_images)
        if not chosen:
            print(
                f"no unreviewed image of {args.run} has a verified candidate in band {band}; nothing to push"
            )
            return 0
        client = _client(args)
        project = args.project or client.create_project(
            args.title or f"{Path(args.run).resolve().name}: band {band}", labeling_config(vocabulary)
        )
        tasks = [task(r, band, args.image_url_prefix + r.image) for r in chosen]
        imported = client.import_tasks(project, tasks)
    except (RunError, VocabularyError, ValueError, LabelStudioError) as exc:
        return _error(str(exc))
    manifest = {"url": client.url, "project": project, "band": str(band), "images": [r.image for r in chosen]}
    run.review_manifest_path.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    print(
        plan_markdown(
            [plan_band(records, band, args.gpu_price, args.human_price, args.max_images)], args.human_price
        )
    )
    print(f"pushed {imported} tasks to Label Studio project {project} at {client.url}; "
          f"pull the answers with `tagllm review pull {args.run}`")  # fmt: skip
    return 0


def cmd_review_pull(args) -> int:
    from tagllm.bulk.run import RunError
    from tagllm.calibration.calibrate import calibrate_vocabulary, samples_from_results, summary_markdown
    from tagllm.review.labelstudio import LabelStudioError
    from tagllm.review.tasks import reviews_from_export
    from tagllm.vocab import VocabularyError

    try:
        target = Target.parse(args.target)
        run, records, vocabulary = _records_and_vocabulary(args)
        manifest = (
            json.loads(run.review_manifest_path.read_text()) if run.review_manifest_path.exists() else {}
        )
        project = args.project or manifest.get("project")
        if not project:
            raise RunError(f"{args.run} has no review.json (was it pushed?): pass --project ID")
        client = _client(args, manifest)
        answers = reviews_from_export(client.export_tasks(int(project)), int(project), vocabulary)
        ours = {r.image for r in records}
        strangers = sorted({a.image for a in answers} - ours)
        if strangers:
            raise RunError(f"project {project} has answers for images not in {args.run}: {strangers[:5]}")
        before = run.reviews()
        new = [a for a in answers if before.get(a.image) != a]
        run.append_reviews(new)
    except (RunError, VocabularyError, ValueError, LabelStudioError) as exc:
        return _error(str(exc))
    print(
        f"{len(answers)} answered tasks in project {project}; "
        f"{len(new)} new or changed reviews merged into {args.run}"
    )
    if args.refit:
        reviews = run.reviews()
        gold = {image: set(review.labels) for image, review in reviews.items()}
        samples = samples_from_results(((r.image, r.result.verifications) for r in records), gold)
        try:
            report = calibrate_vocabulary(vocabulary, samples, gold, target, source=f"reviews of {args.run}")
        except ValueError as exc:
            return _error(str(exc))
        calibrated = _calibrated(report, None)
        Path(args.refit).write_text(calibrated.to_yaml(), encoding="utf-8")
        print(summary_markdown(report))
        print(f"wrote {args.refit}: vocabulary {calibrated.name} {calibrated.full_version}; "
              "fitted on the reviewed (uncertain) images only, so mix in a random labelled sample "
              "when you can", file=sys.stderr)  # fmt: skip
    return 0


def _add_labelstudio_arguments(parser) -> None:
    parser.add_argument("run", help="annotation run directory")
    parser.add_argument("--url", help="Label Studio URL (default: $LABEL_STUDIO_URL, or the one push used)")
    parser.add_argument(
        "--token", help="Label Studio API token, legacy or personal (default: $LABEL_STUDIO_API_KEY)"
    )
    parser.add_argument("--vocab", help="vocabulary of the run (default: the one its run.json names)")


def _add_price_arguments(parser) -> None:
    parser.add_argument(
        "--gpu-price", type=float, default=DEFAULT_GPU_PRICE_PER_HOUR, help="dollars per GPU-hour"
    )
    parser.add_argument(
        "--human-price",
        type=float,
        default=DEFAULT_HUMAN_COST_PER_IMAGE,
        help="dollars per image a person reviews",
    )
    parser.add_argument(
        "--max-images", type=int, default=0, help="at most this many images, most expected errors first"
    )


def add_review_parsers(commands) -> None:
    review = commands.add_parser("review", help="people for the uncertain band, in Label Studio")
    sub = review.add_subparsers(dest="review_command", required=True)
    plan = sub.add_parser("plan", help="per band: images to people, expected quality of the merge, cost")
    plan.add_argument("run", help="annotation run directory")
    plan.add_argument("--vocab", help="vocabulary of the run (default: the one its run.json names)")
    plan.add_argument(
        "--band", action="append", help=f"LOW:HIGH of served scores (repeatable; default {DEFAULT_BAND})"
    )
    _add_price_arguments(plan)
    plan.set_defaults(func=cmd_review_plan)

    push = sub.add_parser(
        "push", help="send the images with a candidate in the band to a Label Studio project"
    )
    _add_labelstudio_arguments(push)
    push.add_argument("--band", default=DEFAULT_BAND, help="LOW:HIGH of served scores that need a person")
    push.add_argument("--project", type=int, help="an existing project (default: create one)")
    push.add_argument("--title", help="title of the created project")
    push.add_argument(
        "--image-url-prefix", default="", help="prefix of each task's image URL before the image id"
    )
    _add_price_arguments(push)
    push.set_defaults(func=cmd_review_push)

    pull = sub.add_parser("pull", help="merge reviewers' answers into the run (a person's answer wins)")
    _add_labelstudio_arguments(pull)
    pull.add_argument("--project", type=int, help="the project (default: the one push created)")
    pull.add_argument(
        "--refit", help="also refit the calibration on the reviewed images; write the vocabulary here"
    )
    pull.add_argument("--target", default="f1", help="thresholds of the refit: 'f1' or 'precision:P'")
    pull.set_defaults(func=cmd_review_pull)


def add_parsers(commands) -> None:
    add_review_parsers(commands)
    calibrate = commands.add_parser(
        "calibrate",
        help="fit per-class calibration and thresholds on a run with gold labels; "
        "write the vocabulary's new version",
    )
    calibrate.add_argument("run", help="annotation run directory (tagllm or binary strategy)")
    calibrate.add_argument(
        "--gold", required=True, help="human labels of (some of) its images: COCO, VOC, CSV"
    )
    calibrate.add_argument("--out", required=True, help="the calibrated vocabulary file to write")
    calibrate.add_argument("--vocab", help="vocabulary of the run (default: the one its run.json names)")
    calibrate.add_argument(
        "--name", help="name of the calibrated vocabulary (default: the same; NAME-calibrated for a built-in)"
    )
    calibrate.add_argument(
        "--label-map", help="JSON or YAML file mapping gold category names to vocabulary names"
    )
    calibrate.add_argument(
        "--target",
        default="f1",
        help="per-class thresholds for 'f1' (best F1) or 'precision:P' (e.g. precision:0.9)",
    )
    calibrate.add_argument(
        "--method",
        choices=("auto", "platt"),
        default="auto",
        help="auto: isotonic where a class has data enough",
    )
    calibrate.add_argument(
        "--prior-strength",
        type=float,
        default=FitSettings.prior_strength,
        help="weight, in samples, of the global fit each class's Platt map is pulled toward",
    )
    calibrate.add_argument("--report", help="also write the Markdown summary here")
    calibrate.add_argument(
        "--source", help="what the labelled sample was, kept in the vocabulary's provenance (default: RUN)"
    )
    calibrate.set_defaults(func=cmd_calibrate)
