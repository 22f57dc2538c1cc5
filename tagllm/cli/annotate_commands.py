"""`tagllm annotate | export`: a dataset annotated through the gateway, and its exports."""

from __future__ import annotations

import sys
from pathlib import Path

from tagllm.bulk.annotate import DEFAULT_WINDOW
from tagllm.bulk.formats import FORMATS
from tagllm.cli.options import (
    add_gateway_arguments,
    add_outside_root_argument,
    add_strategy_arguments,
    gateway_client,
    options_from_arguments,
    options_manifest,
    positive_int,
)
from tagllm.metrics.cost import DEFAULT_GPU_PRICE_PER_HOUR
from tagllm.vocab.registry import DEFAULT_VOCABULARY


def cmd_annotate(args) -> int:
    from tagllm.bulk.annotate import AnnotateSettings, annotate
    from tagllm.bulk.gateway_tagger import GatewayTagger
    from tagllm.bulk.progress import Progress
    from tagllm.bulk.run import RunDirectory, RunError
    from tagllm.bulk.sources import SourceError, parse_shard, read_references, read_shard
    from tagllm.datasets.readers import DatasetError

    try:
        shard = parse_shard(args.shard)
        items = read_shard(args.source, args.images, shard, args.allow_outside_root)
        references = read_references(args.reference) if args.reference else None
    except (SourceError, DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not items:
        print(
            f"error: no images in {args.source} (shard {shard[0]}/{shard[1]}); nothing to annotate",
            file=sys.stderr,
        )
        return 2
    options = options_from_arguments(args)
    with gateway_client(args) as client:
        if not client.reachable():
            print(f"error: cannot reach the gateway at {args.address}: is the stack running? Start it with "
                  "`tagllm up`", file=sys.stderr)  # fmt: skip
            return 2
        run = RunDirectory(args.out)
        manifest = {
            "source": str(Path(args.source).resolve()),
            "vocabulary": args.vocab,
            **options_manifest(args),
            "shard": list(shard),
        }
        try:
            run.open(manifest)
            done_before = len(run.results())
        except RunError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(
            f"{len(items)} images in shard {shard[0]}/{shard[1]}; {done_before} already in {run.path}",
            file=sys.stderr,
        )
        settings = AnnotateSettings(window=args.window, retries=args.retries)
        tagger = GatewayTagger(client, args.vocab, options, timeout=args.timeout)
        progress = Progress(len(items), min(done_before, len(items)), gpu_price_per_hour=args.gpu_price)
        try:
            summary = annotate(items, run, tagger, references, settings, progress)
        except KeyboardInterrupt:
            progress.close()
            print(
                f"\ninterrupted: {len(run.results())} of {len(items)} results are saved in "
                f"{run.results_path}; run the same command to go on from there",
                file=sys.stderr,
            )
            return 130
        finally:
            progress.close()
    print(
        f"{summary.annotated} annotated now, {summary.already_done} before, {summary.failed} failed "
        f"(listed in {run.failures_path})",
        file=sys.stderr,
    )
    return 1 if summary.failed else 0


def cmd_export(args) -> int:
    from tagllm.bulk.exports import export_run
    from tagllm.bulk.run import RunDirectory, RunError

    try:
        path = export_run(
            RunDirectory(args.run), args.format, Path(args.out), args.min_score, args.image_url_prefix
        )
    except (RunError, KeyError) as exc:
        print(f"error: {exc}; formats: {sorted(FORMATS)}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def add_parsers(commands) -> None:
    annotate = commands.add_parser("annotate", help="annotate a dataset through the gateway (resumable)")
    annotate.add_argument("source", help="folder of images, file list (.txt) or COCO-style JSON")
    annotate.add_argument("--out", required=True, help="run directory (created, or resumed)")
    annotate.add_argument("--images", help="root of the image paths in a file list or COCO file")
    add_outside_root_argument(annotate)
    annotate.add_argument("--vocab", default=DEFAULT_VOCABULARY)
    add_strategy_arguments(annotate)
    annotate.add_argument("--shard", default="0/1", help="I/N: annotate the I-th of N deterministic shards")
    annotate.add_argument(
        "--reference", help="human labels (COCO JSON, VOC folder, CSV) sent for live agreement"
    )
    add_gateway_arguments(annotate)
    annotate.add_argument(
        "--window",
        type=positive_int,
        default=DEFAULT_WINDOW,
        help="images in flight on the gateway's StreamTag stream: the model server's batch "
        "(tagllm up --max-batch-size) keeps full with as many, and the gateway reads at most its "
        "stream window (TAGLLM_GATEWAY_STREAM_WINDOW, 8 unless set) of them at once",
    )
    annotate.add_argument("--retries", type=int, default=4, help="retries of a retryable failure")
    annotate.add_argument(
        "--timeout", type=float, default=300.0, help="seconds an image may wait for its answer on the stream"
    )
    annotate.add_argument(
        "--gpu-price",
        type=float,
        default=DEFAULT_GPU_PRICE_PER_HOUR,
        help="dollars per GPU-hour, for the progress line",
    )
    annotate.set_defaults(func=cmd_annotate)

    export = commands.add_parser("export", help="export an annotation run")
    export.add_argument("run")
    export.add_argument("--format", required=True, choices=sorted(FORMATS))
    export.add_argument("--out", required=True)
    export.add_argument("--min-score", type=float, default=0.0, help="leave out labels scoring below this")
    export.add_argument(
        "--image-url-prefix",
        default="",
        help="labelstudio: prefix of each task's image URL before the image id, e.g. /data/local-files/?d=",
    )
    export.set_defaults(func=cmd_export)
