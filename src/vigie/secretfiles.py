"""Files that hold secrets (tokens, webhook secrets, password hashes): owner-only, always.

:func:`write_secret` writes through a temporary file created with mode 0600 and renamed
over the target, so the secret is never readable by others, not even for a moment, and
a file that existed with a wider mode is replaced rather than kept.

>>> import tempfile
>>> from pathlib import Path
>>> path = write_secret(Path(tempfile.mkdtemp()) / "token", "s3cret\\n")
>>> oct(path.stat().st_mode & 0o777), path.read_text()
('0o600', 's3cret\\n')
"""

from __future__ import annotations

import os
from pathlib import Path


def write_secret(path: Path, text: str) -> Path:
    """Write ``text`` to ``path``, readable and writable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    temporary.chmod(0o600)
    temporary.replace(path)
    return path
