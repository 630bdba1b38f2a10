"""What GROUP_HISTORY means, decided once in core: conversation keys and name prefixes from platform facts."""

from __future__ import annotations

from core import ConversationKey, Turn, UserRef, conversation_for


def test_group_history_user_gives_each_member_of_a_group_a_conversation_and_leaves_direct_chats_alone() -> None:
    direct = conversation_for("telegram", "7", user_id="7", is_group=False, group_history="user")
    group = conversation_for("telegram", "-100", user_id="7", is_group=True, group_history="user")
    topic = conversation_for("telegram", "-100", thread_id="3", user_id="7", is_group=True, group_history="user")
    # The stored identities of existing databases: scope is the user's id, "" for a whole chat.
    assert (direct.chat_id, direct.thread_id, direct.scope, direct.is_group) == ("7", "", "", False)
    assert (group.chat_id, group.thread_id, group.scope, group.is_group) == ("-100", "", "7", True)
    assert (topic.chat_id, topic.thread_id, topic.scope) == ("-100", "3", "7")


def test_group_history_chat_gives_a_group_one_conversation_everyone_shares() -> None:
    ann = conversation_for("discord", "10", thread_id="11", user_id="7", is_group=True, group_history="chat")
    bob = conversation_for("discord", "10", thread_id="11", user_id="8", is_group=True, group_history="chat")
    assert ann == bob == ConversationKey("discord", "10", thread_id="11")
    assert ann.is_group and ann.is_shared


def test_only_turns_of_a_shared_group_conversation_carry_the_speakers_name() -> None:
    def turn(is_group: bool, group_history: str) -> Turn:
        key = conversation_for("discord", "10", user_id="7", is_group=is_group, group_history=group_history)
        return Turn(key, UserRef("7", "Ann"), "hi")

    assert turn(is_group=True, group_history="chat").name_prefix
    assert not turn(is_group=True, group_history="user").name_prefix
    assert not turn(is_group=False, group_history="chat").name_prefix
