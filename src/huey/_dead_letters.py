"""The dead-letter API of ``Huey``: tasks set aside instead of being lost (crash loops,
messages that cannot be decoded), listed, requeued or deleted."""

from __future__ import annotations

from typing import TYPE_CHECKING

from huey.storage._base import DeadLetter

if TYPE_CHECKING:
    from huey.storage._base import BaseStorage


class DeadLettersMixin:
    """Dead-letter methods of a Huey instance (they delegate to its storage)."""

    storage: BaseStorage

    def dead_letters(self, limit: int | None = None) -> list[DeadLetter]:
        """Messages set aside (crash loops, undecodable messages), oldest first."""
        return self.storage.dead_letters(limit)

    def dead_letter_count(self) -> int:
        """Number of dead letters."""
        return self.storage.dead_letter_count()

    def requeue_dead_letter(self, id: str) -> bool:
        """Put one dead letter back on the queue; return whether it existed."""
        letter = self.storage.pop_dead_letter(id)
        if letter is None:
            return False
        self.storage.enqueue(letter.data)
        return True

    def requeue_dead_letters(self) -> int:
        """Put every dead letter back on the queue; return how many."""
        return sum(self.requeue_dead_letter(letter.id) for letter in self.dead_letters())

    def delete_dead_letter(self, id: str) -> bool:
        """Delete one dead letter; return whether it existed."""
        return self.storage.pop_dead_letter(id) is not None

    def flush_dead_letters(self) -> None:
        """Delete every dead letter."""
        self.storage.flush_dead_letters()
