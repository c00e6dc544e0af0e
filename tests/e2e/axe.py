"""axe-core 4 for the browser tests: any serious or critical violation is a finding.

axe is a test asset (tests/e2e/vendor, MIT-licensed, from npm), never shipped to users:
Playwright evaluates it through the DevTools protocol, which the page's strict CSP does not
govern, so the CSP stays exactly what users get."""

from pathlib import Path

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.map(n => n.target.join(' ')).join(', '));
}"""


def audit(page, screen: str, found: list[str]) -> None:
    """Run axe over the page as it is now; append each serious/critical violation to found."""
    if page.evaluate("typeof window.axe") == "undefined":
        page.evaluate(AXE)
    for violation in page.evaluate(RUN):
        found.append(f"{screen}: {violation}")
