"""A task's icon (``icon="envelope"``; an integration sets its own) as a symbol in every view.

Icons are FontAwesome 4 names, as in Trigger.dev. The interactive tree draws FontAwesome itself
(ipywidgets ships it); the static HTML and the text have no icon font, so each name maps to a
plain Unicode glyph present in DejaVu Sans (no emoji font is needed, and none with emoji
presentation is used: they would turn into coloured pictures where an emoji font exists).
A name not listed gets a neutral dot, with the name as its tooltip: never the name as text.
"""

from __future__ import annotations

UNKNOWN_GLYPH = "•"

# FontAwesome 4 name -> glyph; aliases (integration names, FA 5 spellings) point at these.
_GLYPHS = {
    "envelope": "✉",
    "database": "⛁",
    "slack": "#",
    "github": "⎇",
    "globe": "◍",
    "clock-o": "◴",
    "cloud": "☁",
    "file": "▤",
    "folder": "▭",
    "user": "☺",
    "bell": "♪",
    "cog": "⚙",
    "paper-plane": "➤",
    "key": "⚷",
    "search": "⚲",
    "warning": "⚠",
    "star": "★",
    "flag": "⚑",
    "home": "⌂",
    "phone": "☎",
    "calendar": "▦",
    "table": "▦",
    "pencil": "✎",
    "upload": "⇧",
    "download": "⇩",
    "picture-o": "▣",
    "bar-chart": "▥",
    "terminal": "❯",
    "code": "⟨⟩",
    "random": "⚄",
    "credit-card": "$",
    "plane": "✈",
    "heart": "♥",
    "list": "☰",
    "sun-o": "☀",
    "recycle": "♻",
}
_ALIASES = {
    "envelope-o": "envelope",
    "mail": "envelope",
    "email": "envelope",
    "inbox": "envelope",
    "sendgrid": "envelope",
    "resend": "envelope",
    "db": "database",
    "sql": "database",
    "postgres": "database",
    "postgresql": "database",
    "mysql": "database",
    "sqlite": "database",
    "redis": "database",
    "supabase": "database",
    "hashtag": "slack",
    "git": "github",
    "gitlab": "github",
    "code-fork": "github",
    "http": "globe",
    "api": "globe",
    "web": "globe",
    "clock": "clock-o",
    "time": "clock-o",
    "schedule": "clock-o",
    "cron": "clock-o",
    "aws": "cloud",
    "s3": "cloud",
    "gcp": "cloud",
    "azure": "cloud",
    "file-o": "file",
    "file-text": "file",
    "file-text-o": "file",
    "document": "file",
    "folder-o": "folder",
    "folder-open": "folder",
    "user-o": "user",
    "users": "user",
    "person": "user",
    "bell-o": "bell",
    "notification": "bell",
    "cogs": "cog",
    "gear": "cog",
    "gears": "cog",
    "wrench": "cog",
    "settings": "cog",
    "send": "paper-plane",
    "paper-plane-o": "paper-plane",
    "lock": "key",
    "unlock": "key",
    "shield": "key",
    "exclamation-triangle": "warning",
    "star-o": "star",
    "calendar-o": "calendar",
    "edit": "pencil",
    "image": "picture-o",
    "photo": "picture-o",
    "line-chart": "bar-chart",
    "chart": "bar-chart",
    "money": "credit-card",
    "dollar": "credit-card",
    "usd": "credit-card",
    "stripe": "credit-card",
    "bars": "list",
    "list-ul": "list",
}


def _canonical(name: str) -> str | None:
    key = name.strip().lower().removeprefix("fa-")
    key = _ALIASES.get(key, key)
    return key if key in _GLYPHS else None


def icon_glyph(name: str) -> str:
    """The glyph standing for icon ``name`` (``UNKNOWN_GLYPH`` for names not known)."""
    known = _canonical(name)
    return _GLYPHS[known] if known is not None else UNKNOWN_GLYPH


def fontawesome_name(name: str) -> str | None:
    """The FontAwesome 4 icon to draw for ``name``; None when it is not one we know exists."""
    return _canonical(name)
