from __future__ import annotations

import re
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
READS = re.compile(
    r"""env\.(?:str|bool|int|float|list|json|dict|url|db_url_config|db_url|email_url|path)\(\s*["']([A-Z][A-Z0-9_]+)["']"""
)
OS_READS = re.compile(r"""os\.environ\.get\(\s*["']([A-Z][A-Z0-9_]+)["']""")


def variables_read_by_the_code() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in BASE_DIR.rglob("*.py"):
        relative = path.relative_to(BASE_DIR)
        # Test and benchmark harnesses have their own knobs; this is about configuring the product.
        if (
            relative.parts[0] in (".venv", ".data", "bench")
            or "tests" in relative.parts
            or relative.name.startswith("test")
        ):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for name in READS.findall(text) + OS_READS.findall(text):
            found.setdefault(name, str(relative))
    return found


def test_env_example_documents_every_variable_the_code_reads():
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (BASE_DIR / ".env.example").read_text(), re.M))
    missing = {name: where for name, where in variables_read_by_the_code().items() if name not in documented}
    assert not missing, f"Document these in .env.example: {missing}"
