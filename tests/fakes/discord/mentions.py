"""Who a message would notify, from its content and allowed_mentions, by Discord's rules (pure, no I/O).

Source: Discord docs "Message Resource: Allowed Mentions Object"; the fake is strict where they are vague.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .models import JSON, MentionOutcome

USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")
PARSE_TYPES = frozenset({"users", "roles", "everyone"})
MAX_ALLOWED_IDS = 100


class AllowedMentionsError(ValueError):
    """An allowed_mentions object Discord would refuse (answered as 50035 Invalid Form Body)."""


def _ids(values: Iterable[object]) -> frozenset[int]:
    try:
        return frozenset(int(str(v)) for v in values)
    except ValueError:
        raise AllowedMentionsError("ids must be snowflakes") from None


def _check(allowed: JSON) -> tuple[frozenset[str], frozenset[int] | None, frozenset[int] | None]:
    parse = allowed.get("parse", [])
    if not isinstance(parse, list) or not set(parse) <= PARSE_TYPES:
        raise AllowedMentionsError(f"parse must be a subset of {sorted(PARSE_TYPES)}")
    users = allowed.get("users")
    roles = allowed.get("roles")
    for kind, listed in (("users", users), ("roles", roles)):
        if listed and kind in parse:
            raise AllowedMentionsError(f'parse:["{kind}"] and {kind}: [ids...] are mutually exclusive.')
        if listed is not None and len(listed) > MAX_ALLOWED_IDS:
            raise AllowedMentionsError(f"{kind} must have {MAX_ALLOWED_IDS} or fewer items")
    return (
        frozenset(parse),
        None if users is None else _ids(users),
        None if roles is None else _ids(roles),
    )


def compute_mentions(
    content: str,
    allowed: JSON | None,
    *,
    in_guild: bool,
    author_id: int,
    replied_author_id: int | None = None,
) -> MentionOutcome:
    """Return whom `content` notifies under `allowed` (None: the field was absent, so everything is parsed).

    Mentions inside code blocks are counted (stricter than clients render them); @everyone/@here and roles
    only notify in guild channels; the author never notifies itself. A reply notifies the replied-to author
    unless allowed_mentions is present without replied_user=true.
    """
    if allowed is None:
        parse, allowed_users, allowed_roles = PARSE_TYPES, None, None
        replied_user = True
    else:
        parse, allowed_users, allowed_roles = _check(allowed)
        replied_user = bool(allowed.get("replied_user", False))
    in_content_users = frozenset(int(m) for m in USER_MENTION.findall(content))
    in_content_roles = frozenset(int(m) for m in ROLE_MENTION.findall(content))
    users = in_content_users if "users" in parse else in_content_users & (allowed_users or frozenset())
    roles = in_content_roles if "roles" in parse else in_content_roles & (allowed_roles or frozenset())
    if replied_author_id is not None and replied_user:
        users |= {replied_author_id}
    can_mass_ping = in_guild and "everyone" in parse
    return MentionOutcome(
        everyone=can_mass_ping and "@everyone" in content,
        here=can_mass_ping and "@here" in content,
        users=users - {author_id},
        roles=roles if in_guild else frozenset(),
    )
