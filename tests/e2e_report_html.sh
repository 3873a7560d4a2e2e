#!/usr/bin/env bash
# Renders the report.html of a synthetic study (written by the test_report suite) in headless
# Chromium: fails on console errors, on missing sections or charts, and on a blank screenshot.
# Chromium is Debian's package; it is installed here when missing (as root), and the test
# FAILS (never skips) when it cannot be had.
set -euo pipefail

fail() { echo "e2e_report_html: FAIL: $*" >&2; exit 1; }

BIN=${LIBRA_BINARY_DIR:?LIBRA_BINARY_DIR must point at the build directory}
TEST_REPORT="$BIN/tests/test_report"
[ -x "$TEST_REPORT" ] || fail "$TEST_REPORT not built"

if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        echo "chromium not found; installing Debian's package" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y chromium >/dev/null 2>&1 ||
            { apt-get update >/dev/null 2>&1 && apt-get install -y chromium >/dev/null 2>&1; } ||
            fail "chromium is not installed and 'apt-get install -y chromium' failed"
    else
        fail "chromium is not installed and this is not root: run 'apt-get install -y chromium'"
    fi
fi
command -v chromium >/dev/null 2>&1 || fail "chromium still not on PATH after installing"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
OUT="$WORK/out"

LIBRA_REPORT_OUT="$OUT" "$TEST_REPORT" >"$WORK/suite.log" 2>&1 || { cat "$WORK/suite.log"; fail "test_report failed"; }
[ -s "$OUT/report.html" ] || fail "test_report wrote no $OUT/report.html"

# One headless Chromium run; extra arguments after the URL's flags. Logs go to $WORK/<name>.log.
chrome() {
    local name=$1 url=$2
    shift 2
    timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$(mktemp -d -p "$WORK")" --enable-logging=stderr --v=0 \
        --hide-scrollbars "$@" "$url" 2>"$WORK/$name.log"
}
# any console message counts: the report has no script, so one means something went wrong
console_errors() { grep -E "Uncaught|:CONSOLE" "$1" || true; }

# The detector must see an error where there is one, or a clean report proves nothing.
printf '<!DOCTYPE html><title>canary</title><script>libraNoSuchFunction();</script>\n' >"$WORK/canary.html"
chrome canary "file://$WORK/canary.html" --dump-dom >/dev/null || true
[ -n "$(console_errors "$WORK/canary.log")" ] ||
    { cat "$WORK/canary.log"; fail "a page with a script error logged no console error: the check is blind"; }

chrome dom "file://$OUT/report.html" --dump-dom >"$WORK/dom.html" || fail "chromium --dump-dom failed (see $WORK/dom.log)"
chrome shot "file://$OUT/report.html" --screenshot="$WORK/shot.png" --window-size=1200,2000 ||
    fail "chromium --screenshot failed"

errs=$(console_errors "$WORK/dom.log"; console_errors "$WORK/shot.log")
[ -z "$errs" ] || fail "console errors while rendering report.html:
$errs"

# Widths: each page in a 1400-px and an 800-px window, measured by a script added to a copy
# (the report has none): no element may reach past the window, except inside a container
# that scrolls sideways (a wide table's); at 1400 px the summary table fits without scrolling.
[ -s "$OUT/wide.html" ] && [ -s "$OUT/sweep.html" ] || fail "test_report wrote no wide.html / sweep.html"
measure='<script>(function(){var d=document.documentElement,W=d.clientWidth,bad=[];
if(d.scrollWidth>W)bad.push("page:"+d.scrollWidth);
document.querySelectorAll("body *").forEach(function(e){
for(var p=e.parentElement;p&&p!==document.body;p=p.parentElement){var o=getComputedStyle(p).overflowX;
if(o==="auto"||o==="scroll"||o==="hidden")return;}
var r=e.getBoundingClientRect();if(r.right>W+0.5)bad.push(e.tagName+":"+Math.round(r.right));});
var t=document.querySelector("table.summary"),fits=!t||t.parentElement.scrollWidth<=t.parentElement.clientWidth;
document.title="LAYOUT W="+W+" bad="+bad.length+" fits="+fits+" "+bad.slice(0,6).join(",");})();</script>'
for page in report wide sweep; do
    sed "s|</body>|$(printf '%s' "$measure" | tr -d '\n' | sed 's/[&|]/\\&/g')</body>|" "$OUT/$page.html" >"$WORK/m-$page.html"
    for width in 1400 800; do
        chrome "m-$page-$width" "file://$WORK/m-$page.html" --window-size=$width,900 --dump-dom >"$WORK/m-$page-$width.dom" ||
            fail "chromium --dump-dom of $page.html at $width px failed"
        got=$(grep -o '<title>LAYOUT[^<]*' "$WORK/m-$page-$width.dom" | sed 's/<title>//') ||
            fail "$page.html at $width px: the measuring script did not run"
        case "$got" in "LAYOUT W=$width bad=0 "*) ;; *) fail "$page.html at $width px: elements wider than the window: $got" ;; esac
        if [ "$width" = 1400 ]; then
            case "$got" in *" fits=true"*) ;; *) fail "$page.html at 1400 px: the summary table does not fit: $got" ;; esac
        fi
        echo "$page.html at $width px: $got"
    done
done

for id in dataset summary recall confusion curves grids focal flags; do
    grep -q "<section id=\"$id\">" "$WORK/dom.html" || fail "rendered page has no section '$id'"
done
svgs=$(grep -o "<svg " "$WORK/dom.html" | wc -l)
[ "$svgs" -eq 9 ] || fail "rendered page has $svgs charts, expected 9"
grep -q "Bag &lt;&amp;&gt;" "$WORK/dom.html" || fail "the escaped class name is not in the rendered page"

[ -s "$WORK/shot.png" ] || fail "no screenshot was written"
read -r size colours < <("$TEST_REPORT" --count-colours "$WORK/shot.png") || fail "cannot decode the screenshot"
[ "$size" = "1200x2000" ] || fail "screenshot is $size, expected 1200x2000"
# a blank page is one colour; text, bars and the heatmap give hundreds
[ "$colours" -ge 100 ] || fail "screenshot looks blank: $colours distinct colours"

grep -q '<section id="intervals">' "$OUT/wide.html" || fail "the wide study's report has no dot plot section"
echo "e2e_report_html: report rendered without console errors; 9 charts; screenshot $size with $colours colours; no element wider than 1400 or 800 px"
echo "1 passed, 0 failed"
