"""The use cases' vocabulary for front ends: the values they are handed and show.

The CLI and the web page import these from here, never from ``mail/`` or ``data/``,
so both stand on the use cases alone (tests/test_architecture.py guards it). Each
name still has one home – its own module below; this is only the door to it. Not
light (the inbound reader loads pikepdf): import it under TYPE_CHECKING, or inside a
command whose use case loads these modules anyway."""

from __future__ import annotations

from formtool.data.tables import Dialect
from formtool.mail.contacts import Contact, Skipped
from formtool.mail.inbound import Kind
from formtool.mail.oauth import Secret
from formtool.mail.outbox import Event
from formtool.mail.sentcopy import CopyReport

__all__ = ["Contact", "CopyReport", "Dialect", "Event", "Kind", "Secret", "Skipped"]
