"""``formtool website``: the public partner list and the regional groups, from the returns.

Only organisations that said yes to being named and gave their consent, the latest
return per organisation winning: a later "nein", an opt-out or a ``forget`` takes
them off. No personal data: organisation, kind, town, Landkreis, website and circle;
never a person's name, address, e-mail or phone. Written to ``website/`` as an HTML
fragment (WordPress "Custom HTML" block), Markdown, CSV and JSON (TablePress); the
same data gives the same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from formtool import atomic
from formtool.addresses import same_address
from formtool.data import csvtext
from formtool.data.filenames import file_in
from formtool.data.normalise import columns
from formtool.data.publish import (
    Entry,
    Listing,
    clean,
    din_key,
    from_json,
    safe_url,
    to_csv,
    to_html,
    to_json,
    to_markdown,
)
from formtool.data.tables import unneutralise
from formtool.errors import FormtoolError
from formtool.pdf import formdef
from formtool.pdf.formdef import FormDefinition
from formtool.state.store import Journal, Store, present
from formtool.workspace import Workspace

PARTNER_FORM, GROUP_FORM = "buendnispartner", "regionalgruppe"
PARTNER_FILE, GROUP_FILE = "partnerliste", "regionalgruppen"
PUBLISHED = (".html", ".md", ".csv", ".json")  # what publish writes of each list
BY_CIRCLE, BY_DISTRICT = "kreis", "landkreis"
FORMATS = ("html", "md", "csv", "json")
# What the public lists may show, and nothing else (people's fields never appear here).
PARTNER_DETAILS = (("Art", "art"), ("Ort", "ort_organisation"), ("Landkreis", "landkreis"),
                   ("Kreis", "kreis"))
GROUP_DETAILS = (("Region", "region"), ("Schwerpunkte", "schwerpunkte"),
                 ("Treffen", "treffen"), ("Beteiligte Organisationen", "organisationen"))


class WebsiteError(FormtoolError):
    """The lists cannot be made (no form definition, an unreadable table)."""


@dataclass
class Changes:
    """The partner list against the one published before."""

    new: list[str] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # "Org: Ort A → B"


@dataclass(frozen=True)
class Waiting:
    """A return that would change the public list but is tied to no contact (it came
    from an address the campaign never mailed): it waits for ``--freigeben CODE``."""

    code: str
    title: str
    sender: str
    received: str
    key: str  # the response's key in state.db


@dataclass
class Published:
    partners: Listing
    groups: Listing
    files: list[Path]
    changes: Changes | None = None
    waiting: list[Waiting] = field(default_factory=list)


def _key(row: dict[str, str]) -> str:
    return row.get("response_id") or f"sha256:{row.get('pruefsumme', '')}"


def code_of(key: str) -> str:
    """A short, typeable name for a waiting return."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


def source_of(row: dict[str, str]) -> str:
    """Where a row came from, in words: the mail, else the file."""
    when = row.get("eingegangen_am", "")[:10]
    if row.get("absender"):
        return f"Rücklauf von {row['absender']}" + (f" vom {_german(when)}" if when else "")
    return f"eingelesen aus {row.get('datei', '?')}"


def _german(iso: str) -> str:
    return f"{iso[8:10]}.{iso[5:7]}.{iso[:4]}" if len(iso) == 10 else iso


def _tied(store: Store, approved: set[str], row: dict[str, str]) -> bool:
    """Evidence before the public list: a return imported by hand (no mail), or one
    from its contact's own address, or one the coordinator approved."""
    sender = row.get("absender", "").strip()
    if not sender or _key(row) in approved:
        return True
    contact = row.get("kontakt_id", "")
    invited = store.contact_email(contact) if contact else None
    return invited is not None and same_address(invited, sender)


def _rows(ws: Workspace, store: Store, form: FormDefinition) -> Iterator[dict[str, str]]:
    """The form's imported rows by field name, oldest first; rows whose response was
    forgotten (no longer in state.db) are left out."""
    path = ws.root / "antworten" / f"{form.id}.csv"
    if not path.is_file():
        return
    try:
        text, _ = csvtext.decode(path.read_bytes(), path.name)
    except OSError as exc:
        raise WebsiteError(f"{path}: kann nicht gelesen werden.") from exc
    first = text.split("\n", 1)[0]
    # formtool's own table: the delimiter is the one that splits out its meta columns
    # (a header like "Moderation (Name, Organisation)" fools a sniffer)
    delimiter = next((d for d in ";,\t" if "response_id" in next(csv.reader([first],
                                                                           delimiter=d))),
                     csvtext.delimiter(first))
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = [unneutralise(h) for h in next(reader, [])]
    names = {h: n for labels in (True, False) for n, h in columns(form, labels=labels)}
    live = {r.key for r in store.responses(form.id)}
    rows = []
    for position, cells in enumerate(reader):
        row = {names.get(h, h): unneutralise(c) for h, c in zip(header, cells, strict=False)}
        if _key(row) in live:
            rows.append((row.get("importiert_am", ""), position, row))
    for _, _, row in sorted(rows, key=lambda r: (r[0], r[1])):
        yield row


def _latest(rows: Iterator[dict[str, str]], identity: list[str]) -> list[dict[str, str]]:
    """The last row per organisation (or group), by contact id else by name."""
    latest: dict[str, dict[str, str]] = {}
    for row in rows:
        key = row.get("kontakt_id") or "|".join(din_key(clean(row.get(n, ""))).split("\x00")[0]
                                               for n in identity)
        if key.strip("|"):
            latest[key] = row
    return list(latest.values())


def _yes(value: str) -> bool:
    return value.strip().casefold() in ("ja", "yes", "x")


def _opted_out(journal: Journal, store: Store, row: dict[str, str]) -> bool:
    addresses = [row.get("email", "")]
    if row.get("kontakt_id"):
        addresses.append(store.contact_email(row["kontakt_id"]) or "")
    return any(a.strip() and journal.is_opted_out(a.strip()) for a in addresses)


def _short(label: str) -> str:
    return label.split(" (")[0].strip()


def _trusted(store: Store, rows: Iterator[dict[str, str]], waiting: list[Waiting] | None
             ) -> Iterator[dict[str, str]]:
    """The rows the public list may use; the others named in ``waiting``."""
    approved = store.approved_for_website()
    for row in rows:
        if _tied(store, approved, row):
            yield row
        elif waiting is not None:
            title = row.get("organisation") or row.get("gruppenname") or row.get("region")
            waiting.append(Waiting(code_of(_key(row)), clean(title or ""),
                                   row.get("absender", ""), row.get("eingegangen_am", ""),
                                   _key(row)))


def partner_list(ws: Workspace, store: Store, *, group_by: str = BY_CIRCLE,
                 waiting: list[Waiting] | None = None,
                 sources: dict[str, str] | None = None) -> Listing:
    """The public partner list; returns tied to no contact are left out (and named in
    ``waiting``); ``sources`` gets where each entry's row came from."""
    form = _form(ws, PARTNER_FORM)
    journal = Journal(store)
    circles = [_short(o.label) for f in form.fields() if f.name == "kreis" for o in f.options]
    entries: list[tuple[str, Entry]] = []
    for row in _latest(_trusted(store, _rows(ws, store, form), waiting), ["organisation"]):
        if not (_yes(row.get("website_nennung", "")) and _yes(row.get("einwilligung", ""))):
            continue
        if _opted_out(journal, store, row):
            continue
        title = clean(row.get("organisation", ""))
        if not title:
            continue
        details = tuple((label, _short(clean(row.get(name, ""))) if name == "kreis"
                         else clean(row.get(name, ""))) for label, name in PARTNER_DETAILS)
        entry = Entry(title, safe_url(row.get("website", "")), details)
        if sources is not None:
            sources[din_key(title).split("\x00")[0]] = source_of(row)
        group = (entry.detail("Kreis") if group_by == BY_CIRCLE
                 else entry.detail("Landkreis")) or "ohne Angabe"
        entries.append((group, entry))
    order = ({c: i for i, c in enumerate(circles)} if group_by == BY_CIRCLE else {})
    listing = Listing("Bündnispartner*innen", "formtool-partner",
                      columns=tuple(label for label, _ in PARTNER_DETAILS))
    for group in sorted({g for g, _ in entries}, key=lambda g: (order.get(g, len(order)),
                                                                  din_key(g))):
        listing.groups.append((group, sorted((e for g, e in entries if g == group),
                                             key=lambda e: din_key(e.title))))
    return listing


def group_list(ws: Workspace, store: Store, *, waiting: list[Waiting] | None = None) -> Listing:
    form = _form(ws, GROUP_FORM)
    entries: list[tuple[str, Entry]] = []
    for row in _latest(_trusted(store, _rows(ws, store, form), waiting),
                       ["region", "gruppenname"]):
        if not _yes(row.get("einwilligung", "")):
            continue
        region = clean(row.get("region", ""))
        title = clean(row.get("gruppenname", "")) or region
        if not title:
            continue
        details = tuple((label, _joined(row.get(name, ""))) for label, name in GROUP_DETAILS)
        entries.append((region or "ohne Angabe", Entry(title, "", details)))
    listing = Listing("Regionalgruppen", "formtool-regionalgruppen",
                      columns=tuple(label for label, _ in GROUP_DETAILS))
    for group in sorted({g for g, _ in entries}, key=din_key):
        listing.groups.append((group, sorted((e for g, e in entries if g == group),
                                             key=lambda e: din_key(e.title))))
    return listing


def _joined(text: str) -> str:
    """A multi-line answer as one line: its lines joined with "; "."""
    return "; ".join(clean(line) for line in text.splitlines() if clean(line))


def _form(ws: Workspace, form_id: str) -> FormDefinition:
    try:
        return formdef.load(formdef.find_definition(ws.forms_dir, form_id))
    except FormtoolError as exc:
        raise WebsiteError(f"Für die Website-Listen fehlt das Formular „{form_id}“ in "
                           f"forms/ ({exc}).") from None


def changes(before: list[dict[str, str]], after: Listing,
            sources: dict[str, str] | None = None) -> Changes:
    """Who is new, who withdrew, whose details changed, by organisation name; each new
    or changed entry with where it came from (``sources``, by the same key)."""
    old = {din_key(e.get("Name", "")).split("\x00")[0]: e for e in before}
    out = Changes()
    seen = set()
    for _, entries in after.groups:
        for entry in entries:
            key = din_key(entry.title).split("\x00")[0]
            seen.add(key)
            previous = old.get(key)
            source = f" ({sources[key]})" if sources and key in sources else ""
            if previous is None:
                out.new.append(entry.title + source)
                continue
            now = {**dict(entry.details), "Website": entry.link}
            diffs = [f"{label} „{previous.get(label, '')}“ → „{value}“"
                     for label, value in now.items() if previous.get(label, "") != value]
            if diffs:
                out.changed.append(f"{entry.title}: " + ", ".join(diffs) + source)
    out.withdrawn = sorted((e.get("Name", "") for k, e in old.items() if k not in seen),
                           key=din_key)
    return out


def approve(ws: Workspace, store: Store, codes: list[str]) -> None:
    """Let waiting returns onto the public list, by the codes ``publish`` named."""
    waiting: list[Waiting] = []
    for form_id in (PARTNER_FORM, GROUP_FORM):
        for _ in _trusted(store, _rows(ws, store, _form(ws, form_id)), waiting):
            pass
    keys = {w.code: w.key for w in waiting}
    for code in codes:
        key = keys.get(code.strip().lower())
        if key is None:
            raise WebsiteError(f"„{code}“ wartet nicht auf Freigabe (formtool website zeigt, "
                               "welche Rückläufe warten).")
        store.approve_for_website(key)


def publish(ws: Workspace, *, group_by: str = BY_CIRCLE, out_dir: Path | None = None,
            diff: bool = False, approve_codes: list[str] | None = None) -> Published:
    """Write both lists in every format; with ``diff``, compare the partner list with
    the one written before. Returns tied to no contact wait in ``waiting`` until
    approved (``approve_codes``)."""
    target = out_dir or ws.root / "website"
    waiting: list[Waiting] = []
    sources: dict[str, str] = {}
    with Store(ws.state_db) as store:
        if approve_codes:
            approve(ws, store, approve_codes)
        partners = partner_list(ws, store, group_by=group_by, waiting=waiting, sources=sources)
        groups = group_list(ws, store, waiting=waiting)
    found: Changes | None = None
    if diff:
        previous = target / f"{PARTNER_FILE}.json"
        try:
            found = changes(from_json(previous.read_text(encoding="utf-8")), partners, sources)
        except FileNotFoundError:
            found = changes([], partners, sources)
        except (OSError, ValueError) as exc:
            raise WebsiteError(f"{previous}: die zuletzt veröffentlichte Liste ist nicht "
                               f"lesbar ({type(exc).__name__}).") from None
    files: list[Path] = []
    for stem, listing in ((PARTNER_FILE, partners), (GROUP_FILE, groups)):
        for suffix, text in (("html", to_html(listing)), ("md", to_markdown(listing)),
                             ("csv", to_csv(listing)), ("json", to_json(listing))):
            path = target / f"{stem}.{suffix}"
            atomic.write_bytes(path, text.encode("utf-8"))
            files.append(path)
    return Published(partners, groups, files, found, waiting)


@dataclass
class Shown:
    """The lists as they would be written now, and how the partner list differs from
    the one written last – computed, nothing written (the web page's /website)."""

    partners_html: str
    groups_html: str
    partners: int
    groups: int
    changes: Changes
    waiting: list[Waiting]
    files: list[str]  # what was written last, for a download


def show(ws: Workspace, *, group_by: str = BY_CIRCLE) -> Shown:
    target = ws.root / "website"
    waiting: list[Waiting] = []
    sources: dict[str, str] = {}
    if not present(ws.state_db):
        raise WebsiteError("Noch nichts eingelesen: die Partnerliste entsteht aus den "
                           "zurückgekommenen Formularen.")
    with Store(ws.state_db) as store:
        partners = partner_list(ws, store, group_by=group_by, waiting=waiting, sources=sources)
        groups = group_list(ws, store, waiting=waiting)
    previous = target / f"{PARTNER_FILE}.json"
    try:
        before = from_json(previous.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        before = []
    files = sorted(p.name for p in target.glob("*") if p.is_file()
                   and p.suffix in PUBLISHED) if target.is_dir() else []
    return Shown(to_html(partners), to_html(groups), len(partners.entries),
                 len(groups.entries), changes(before, partners, sources), waiting, files)


def download(ws: Workspace, filename: str) -> Path:
    """A written list's file by its name as the page lists it."""
    path = file_in(ws.root / "website", filename, PUBLISHED)
    if path is None:
        raise WebsiteError(f"Keine Datei „{filename}“ in website/.")
    return path
