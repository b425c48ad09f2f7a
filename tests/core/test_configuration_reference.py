"""docs/configuration.md lists every environment variable the code reads, and nothing else.

The code is scanned, not imported: a read is ``os.environ.get("X")``, ``os.environ["X"]``,
``os.getenv("X")``, ``ENV.get("X")`` / ``environ.get("X")`` and the settings helpers
(``_env_int("X", ...)``, ``db_config._int(environ, "X", ...)``) in Python, and ``${X:-...}`` /
``${X-...}`` / ``${X:=...}`` in the shell scripts. Names built at run time (per alias) are checked
by building them for every primary alias; an f-string read that this test does not know fails
until it is added to ``TEMPLATES`` below and to the page.
"""

from __future__ import annotations

import re
from pathlib import Path

from core import aliases, tablespaces

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "configuration.md"

PYTHON_DIRS = ("core", "api", "routers", "openapi", "bench", "tests")
PYTHON_FILES = ("gunicorn.conf.py", "manage.py", "scripts/scheduler")
SHELL_DIRS = ("scripts", ".ci", "bench", "docker")
SHELL_FILES = ("Dockerfile",)

_NAME = r"([A-Z][A-Z0-9_]*[A-Z0-9])"
PYTHON_READS = (
    re.compile(r"(?:os\.environ|\bENV|\benviron)\.get\(\s*[\"']" + _NAME + r"[\"']"),
    re.compile(r"(?:os\.environ|\bENV|\benviron)\[\s*[\"']" + _NAME + r"[\"']\s*\](?!\s*=[^=])"),
    re.compile(r"os\.getenv\(\s*[\"']" + _NAME + r"[\"']"),
    re.compile(r"\b_(?:env_)?(?:int|float|bool|list|str)\(\s*(?:environ,\s*|ENV,\s*)?[\"']" + _NAME + r"[\"']"),
)
# A read whose name is built with an f-string: the f-string's text -> how to expand it.
FSTRING_READ = re.compile(r"(?:os\.environ|\bENV|\benviron)\.get\(\s*f[\"']([^\"']+)[\"']")
TEMPLATES = {
    "FANOUT_BUDGET_{alias.upper()}_SECONDS": lambda: {
        f"FANOUT_BUDGET_{alias.upper()}_SECONDS" for alias in aliases.PRIMARIES
    },
}
SHELL_READS = re.compile(r"\$\{" + _NAME + r":?[-=?]")
# ``environ`` is also the name of a WSGI request's environ (core/logging.py): its CGI keys are
# request data, not configuration.
CGI_KEYS = re.compile(
    r"HTTP_\w+|REMOTE_ADDR|REMOTE_HOST|REQUEST_METHOD|PATH_INFO|QUERY_STRING|CONTENT_LENGTH|CONTENT_TYPE"
    r"|SERVER_NAME|SERVER_PORT|SERVER_PROTOCOL|SCRIPT_NAME"
    r"|PATH|HOME|USER"  # the operating system's own, passed through to child processes
)


def _files(dirs: tuple[str, ...], files: tuple[str, ...], suffixes: tuple[str, ...] | None) -> list[Path]:
    found = [ROOT / name for name in files if (ROOT / name).is_file()]
    for directory in dirs:
        for path in sorted((ROOT / directory).rglob("*")):
            if not path.is_file() or "node_modules" in path.parts or "__pycache__" in path.parts:
                continue
            if suffixes is None or path.suffix in suffixes:
                found.append(path)
    return found


def _shell_like(path: Path) -> bool:
    if path.suffix in {".sh", ".conf", ".yml", ".yaml"} or path.name in {"Dockerfile", "run"}:
        return True
    if path.suffix:
        return False
    try:
        return path.read_text(encoding="utf-8").startswith("#!")
    except UnicodeDecodeError:
        return False


def names_read() -> dict[str, set[str]]:
    """Every variable name read by the code -> the files that read it."""
    names: dict[str, set[str]] = {}
    this_file = Path(__file__).resolve()
    for path in _files(PYTHON_DIRS, PYTHON_FILES, (".py",)):
        if path.resolve() == this_file:
            continue
        text = path.read_text(encoding="utf-8")
        for pattern in PYTHON_READS:
            for name in pattern.findall(text):
                if CGI_KEYS.fullmatch(name):
                    continue
                names.setdefault(name, set()).add(str(path.relative_to(ROOT)))
        for template in FSTRING_READ.findall(text):
            assert template in TEMPLATES, (
                f"{path.relative_to(ROOT)} reads the environment variable f'{template}': "
                "add it to TEMPLATES in this test and to docs/configuration.md"
            )
            for name in TEMPLATES[template]():
                names.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    for path in _files(SHELL_DIRS, SHELL_FILES, None):
        if not _shell_like(path):
            continue
        for name in SHELL_READS.findall(path.read_text(encoding="utf-8")):
            names.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    # Names built per alias by core/aliases.py and core/tablespaces.py.
    for primary in aliases.PRIMARIES:
        for name in (aliases.URL_ENV[primary], aliases.replica_env(primary), *tablespaces.env_names(primary)):
            names.setdefault(name, set()).add("core/aliases.py")
    return names


def page_names() -> set[str]:
    return set(re.findall(r"`" + _NAME + r"`", PAGE.read_text(encoding="utf-8")))


def test_every_variable_the_code_reads_is_on_the_page() -> None:
    read = names_read()
    assert len(read) > 60, sorted(read)  # the scan found the reads (a broken regex finds none)
    missing = {name: sorted(files) for name, files in read.items() if name not in page_names()}
    assert not missing, f"environment variables read but not in docs/configuration.md: {missing}"


def test_the_page_lists_nothing_the_code_does_not_read() -> None:
    """A variable named in a table's first column is read somewhere (no stale rows)."""
    first_column = set()
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        if line.startswith("| `"):
            first_column |= set(re.findall(r"`" + _NAME + r"`", line.split("|")[1]))
    stale = sorted(first_column - set(names_read()))
    assert not stale, f"docs/configuration.md lists variables nothing reads: {stale}"


def test_a_new_read_would_be_found(tmp_path: Path) -> None:
    """The patterns catch each way the code reads a variable (so the first test can fail)."""
    samples = {
        'os.environ.get("A_ONE")': "A_ONE",
        'os.environ["A_TWO"]': "A_TWO",
        'ENV.get("A_THREE", "x")': "A_THREE",
        '_env_int("A_FOUR", 3)': "A_FOUR",
        '_int(environ, "A_FIVE", 3)': "A_FIVE",
        'os.getenv("A_SIX")': "A_SIX",
    }
    for source, name in samples.items():
        assert any(name in pattern.findall(source) for pattern in PYTHON_READS), source
    assert not any(pattern.findall('os.environ["A_SEVEN"] = "1"') for pattern in PYTHON_READS)
    assert SHELL_READS.findall('x="${A_EIGHT:-1}" y="${A_NINE-2}"') == ["A_EIGHT", "A_NINE"]
