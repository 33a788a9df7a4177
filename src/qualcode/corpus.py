"""Files → Segments in batches: the library calls the flow's tasks wrap."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .documents import INTERVIEW, PROSE, TRANSCRIPT, Document, Segment, Skipped
from .ingest import (
    FileRecord,
    discover_files,
    drop_duplicate_ids,
    find_copies,
    ingest_files,
    load_manifest,
    unmatched_doc_ids,
)
from .segment import DEFAULT_MAX_TURN_CHARS, UNLABELLED_ANSWER, segment_document
from .speakers import DEFAULT_INTERVIEWER_LABELS, is_interviewer, labels_remembered


@dataclass(slots=True)
class Batch:
    documents: list[Document] = field(default_factory=list)
    segments: list[list[Segment]] = field(default_factory=list)  # per document
    skipped: list[Skipped] = field(default_factory=list)
    files: list[FileRecord] = field(default_factory=list)


def process_batch(
    corpus: str | Path,
    paths: Sequence[str],
    interviewer_labels: Sequence[str] = DEFAULT_INTERVIEWER_LABELS,
    max_turn_chars: int = DEFAULT_MAX_TURN_CHARS,
) -> Batch:
    """Read and segment one batch of corpus files."""
    corpus = Path(corpus)
    with labels_remembered():
        result = ingest_files(corpus, paths, load_manifest(corpus), interviewer_labels)
        segmented = [segment_document(doc, interviewer_labels, max_turn_chars)
                     for doc in result.documents]
    batch = Batch(files=result.files, skipped=result.skipped)
    for doc, segments in zip(result.documents, segmented, strict=True):
        if segments:
            batch.documents.append(doc)
            batch.segments.append(segments)
            note = (_no_interviewer(doc, segments) or _only_questions(doc, segments)
                    or _asker_taken(doc, segments, interviewer_labels) or _no_labels(doc))
            if note is not None:
                batch.skipped.append(note)
        else:  # only a transcript's labels can leave nothing (other texts are not blank)
            batch.skipped.append(Skipped(
                doc.path, "has speaker labels but no words after them, so there is nothing "
                "to code — add the words of each turn, or remove the file", doc.row))
    if len(batch.documents) < len(result.documents):
        kept = Counter(d.path for d in batch.documents)
        batch.files = [replace(f, documents=kept[f.path]) for f in batch.files]
    return batch


def _no_interviewer(doc: Document, segments: Sequence[Segment]) -> Skipped | None:
    """A note on a transcript with two or more speakers of whom none is an interviewer
    label (``Entrevistador``, ``Speaker 1``): all its turns are coded, questions too."""
    if doc.layout != TRANSCRIPT:
        return None
    speakers = list(dict.fromkeys(s.speaker for s in segments if s.speaker))
    if len(speakers) < 2 or not all(s.codable for s in segments if s.speaker):
        return None
    shown = ", ".join(speakers[:4]) + (" ..." if len(speakers) > 4 else "")
    return Skipped(doc.path, (
        f"has the speakers {shown}, none of them an interviewer label, so every turn was "
        "coded, questions too — if one of them asks the questions, run with "
        f"--interviewer-labels and that label (e.g. --interviewer-labels \"{speakers[0]}\"); "
        "the file was read"), doc.row, note=True)


def _asker_taken(doc: Document, segments: Sequence[Segment],
                 interviewer_labels: Sequence[str]) -> Skipped | None:
    """A note on a transcript whose interviewer was told by the questions
    (:func:`~qualcode.segment.question_asker`): no label of it is an interviewer label."""
    if doc.layout != TRANSCRIPT:
        return None
    taken = {s.speaker for s in segments if s.speaker and not s.codable
             and s.speaker != UNLABELLED_ANSWER and not is_interviewer(s.speaker,
                                                                       interviewer_labels)}
    if not taken:
        return None
    name = " and ".join(sorted(taken))
    return Skipped(doc.path, (
        f"has no interviewer label among its speakers, but {name} asks the questions, so "
        f"{name}'s turns were read as the interviewer's and not coded — if that is wrong, "
        "run with --interviewer-labels naming the label of the one who asks (then nothing "
        "is guessed); the file was read"), doc.row, note=True)


def _only_questions(doc: Document, segments: Sequence[Segment]) -> Skipped | None:
    """A note on a transcript whose every label is an interviewer's: its unlabelled
    answers were read as such, or (with none) nothing in it was coded."""
    if doc.layout != TRANSCRIPT:
        return None
    asked = list(dict.fromkeys(s.speaker for s in segments if s.speaker and not s.codable))
    if any(s.speaker not in ("", UNLABELLED_ANSWER) for s in segments if s.codable):
        return None
    shown = ", ".join(asked[:4])
    if any(s.speaker == UNLABELLED_ANSWER for s in segments):
        return Skipped(doc.path, (
            f"has speaker labels only for the interviewer ({shown}), so the lines after each "
            f"question were read as the answer of '{UNLABELLED_ANSWER}' and coded — check "
            "them, or label the answers ('Respondent: ...'); the file was read"),
            doc.row, note=True)
    return Skipped(doc.path, (
        f"has only interviewer turns ({shown}), so nothing in it was coded — label the "
        "answers ('Respondent: ...'); if one of these labels is the respondent's, run with "
        "--interviewer-labels without it; the file was read"), doc.row, note=True)


# Folders whose files are interviews, by their name: one there without speaker labels
# was read as prose, every paragraph coded (questions too) — worth a note.
_INTERVIEW_FOLDERS = {"transcripts", "transcript", "interviews", "interview"}


def _no_labels(doc: Document) -> Skipped | None:
    """A note on an interview (by its folder or its ``source_type``) in which no speaker
    label was found, so it was read as prose."""
    if doc.layout != PROSE:
        return None
    folder = next((part for part in Path(doc.path).parts[:-1]
                   if part.casefold() in _INTERVIEW_FOLDERS), None)
    if doc.metadata.get("source_type") == INTERVIEW:
        fix = "give it another source_type"
    elif folder is not None:
        fix = f"move it out of {folder}/"
    else:
        return None
    return Skipped(doc.path, (
        "has no speaker labels that qualcode recognises, so it was read as prose and every "
        "paragraph was coded, questions too — if it is an interview, start each turn with "
        "the speaker's label and a colon ('Interviewer: ...', 'Respondent: ...'; 'Q. ...' "
        f"and 'A. ...' work too); if it is not, {fix}; the file was read"),
        doc.row, note=True)


def combine_batches(batches: Sequence[Batch]) -> Batch:
    """Merge batches in path order (a file's documents in the order read: a workbook's
    sheet by sheet, then row by row). Of byte-identical files (copies under other names)
    one is kept (:func:`~qualcode.ingest.find_copies`) and the others are reported; then
    a later document with an already used ``doc_id`` is dropped."""
    pairs = sorted(
        ((d, segs) for b in batches for d, segs in zip(b.documents, b.segments, strict=True)),
        key=lambda pair: pair[0].path,  # stable: each file's order stays
    )
    copies = find_copies(d for d, _ in pairs)
    kept, duplicates = drop_duplicate_ids([d for d, _ in pairs if d.path not in copies])
    kept_objects = {id(d) for d in kept}
    segments = [segs for d, segs in pairs if id(d) in kept_objects]
    return Batch(
        documents=kept,
        segments=segments,
        skipped=[s for b in batches for s in b.skipped if s.path not in copies]
        + list(copies.values()) + duplicates,
        files=[replace(f, documents=0) if f.path in copies else f
               for b in batches for f in b.files],
    )


def input_records(files: Sequence[FileRecord]) -> list[dict]:
    return [asdict(f) for f in files]


def flat_segments(batch: Batch) -> list[Segment]:
    return [s for segs in batch.segments for s in segs]


def read_corpus(
    corpus: str | Path,
    interviewer_labels: Sequence[str] = DEFAULT_INTERVIEWER_LABELS,
    max_turn_chars: int = DEFAULT_MAX_TURN_CHARS,
) -> Batch:
    """The whole corpus read and segmented in one process, with every skip reported."""
    corpus = Path(corpus)
    paths, unsupported = discover_files(corpus)
    batch = combine_batches([process_batch(corpus, paths, interviewer_labels, max_turn_chars)])
    manifest = load_manifest(corpus)
    unmatched = unmatched_doc_ids(manifest, batch.documents)
    batch.skipped[:0] = [*manifest.problems, *unmatched, *unsupported]
    return batch
