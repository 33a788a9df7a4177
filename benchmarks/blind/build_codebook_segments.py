"""Write blind sets into a codebook as its labelled segments (training data).

    .venv/bin/python benchmarks/blind/build_codebook_segments.py bld ble blh bli \
        [--codebook codebook.yaml]

Each set's gold-coded segments, as qualcode reads them, replace the codebook's
``labelled_segments:`` block (at the end of the file) and each code's ``segments:`` list
(the ids of the segments that carry it). A set used here is training data from then on:
measure on the others (benchmarks/blind/README.md).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from classifier_devset import load_devset  # noqa: E402

from qualcode.codebook import load_codebook  # noqa: E402

HEADER = """\
# ----------------------------------------------------------------------------------------
# Labelled segments: whole interview turns and literature excerpts coded against this
# codebook, which the classifier learns from as from reviewed segments (a code's
# 'segments:' list names those that carry it; a segment no code lists carries none).
# Fictional, written for qualcode from codebook-spec.md (benchmarks/blind/README.md);
# written by benchmarks/blind/build_codebook_segments.py.
labelled_segments:
"""
_SEGMENTS_LINE = re.compile(r"(?m)^    segments: \[[^\]]*\]\n")


def _flow_list(ids: list[str], indent: int = 6, width: int = 92) -> str:
    lines, line = [], ""
    for item in (json.dumps(i) for i in ids):
        if line and len(line) + len(item) + 2 > width - indent:
            lines.append(line + ",")
            line = ""
        line = f"{line}, {item}" if line else item
    lines.append(line)
    return "[" + ("\n" + " " * indent).join(lines) + "]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="+", help="blind set folders under benchmarks/blind")
    parser.add_argument("--codebook", type=Path, default=HERE.parents[1] / "codebook.yaml")
    args = parser.parse_args()
    rows = []
    for name in args.sets:
        ids, texts, codes, _ = load_devset(HERE / name)
        rows += list(zip(ids, texts, codes, strict=True))
    code_ids = load_codebook(args.codebook).code_ids
    text = args.codebook.read_text(encoding="utf-8")
    text = _SEGMENTS_LINE.sub("", text).split(HEADER.splitlines()[0] + "\n")[0].rstrip("\n")
    for code_id in code_ids:
        carried = [i for i, _, codes in rows if code_id in codes]
        block = re.search(rf"(?ms)^  - id: {re.escape(code_id)}\n.*?(?=^  - id: |\Z)", text)
        assert block is not None, code_id
        # the code's own lines, then any comment lines that open the next category
        body, tail = re.fullmatch(r"(?s)(.*?\S[^\n]*\n)((?:[ \t]*(?:#[^\n]*)?\n)*)",
                                  block.group() + "\n").groups()
        new = f"{body}    segments: {_flow_list(carried)}\n{tail}"
        text = text[:block.start()] + new.rstrip("\n") + "\n" + (
            "\n" if block.end() < len(text) else "") + text[block.end():].lstrip("\n")
    text = text.rstrip("\n") + "\n\n" + HEADER + "".join(
        f"  - id: {json.dumps(i)}\n    text: {json.dumps(t, ensure_ascii=False)}\n"
        for i, t, _ in rows)
    args.codebook.write_text(text, encoding="utf-8")
    print(f"{args.codebook}: {len(rows)} labelled segments from {', '.join(args.sets)}")


if __name__ == "__main__":
    main()
