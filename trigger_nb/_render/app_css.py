"""The stylesheet of the page-drawn run view (``tree_app.js``): its controls, rows and timeline,
and the rules that keep a saved notebook readable when it is reopened without a kernel.

Status colours come from ``tree.COLORS`` (one place for every view).
"""

from trigger_nb._render.css import STATUSES
from trigger_nb._render.tree import COLORS

# A finished run's cell has two outputs: a hidden widget (the page's link to the kernel while it
# lives, ``_widgets.bridge``) and this page. Reopened without a kernel, JupyterLab and Notebook 7
# draw the widget's output as "Error displaying widget: model not found" (or "Loading
# widget...": text, no element); these rules hide that output when it sits just before a page
# (``:has``, which cannot nest: hence the output, not its row, is hidden; Chromium 105+, Firefox
# 121+, Safari 15.4+), and hide the page while an ipywidgets tree is shown in its place
# (``LiveRunView.open_tree``). The page's script does the same where these class names do not
# apply (``hideDead``). The bridge's own two widgets never show.
REOPEN_CSS = """
.jp-OutputArea-child:has(+ .jp-OutputArea-child .tnb-doc)>
.jp-OutputArea-output.jupyter-widgets:not(:has(*)){display:none}
.jp-OutputArea-child:has(.tnb-run-view) + .jp-OutputArea-child:has(.tnb-doc){display:none}
.tnb-bridge-in,.tnb-bridge-out{display:none!important}
"""

APP_CSS = """
.tnb-doc .tnb-bar-row{display:flex;flex-wrap:wrap;align-items:center;gap:4px;margin:4px 0 6px}
.tnb-doc .tnb-bar-row button,.tnb-doc .tnb-bar-row select,.tnb-doc .tnb-bar-row input,
.tnb-doc .tnb-tl-head select{font:inherit;font-size:12px;border:1px solid
var(--tnb-border);background:var(--tnb-bg);
color:var(--tnb-fg);border-radius:12px;padding:1px 9px;cursor:pointer}
.tnb-doc .tnb-actions-row{margin:6px 0 2px}
.tnb-doc .tnb-actions-row button{font:inherit;font-size:12px;border:1px solid
var(--tnb-border);background:var(--tnb-bg);
color:var(--tnb-fg);border-radius:4px;padding:1px 9px;cursor:pointer}
.tnb-doc .tnb-answer{margin:4px 0}
.tnb-doc .tnb-refresh-pending{background:#57606a}
.tnb-doc .tnb-bar-row button:disabled{opacity:.45;cursor:default}
.tnb-doc .tnb-bar-row .tnb-on{background:var(--tnb-brand);color:#fff;
border-color:var(--tnb-brand)}
.tnb-doc .tnb-tab{border-radius:4px!important;font-weight:600}
.tnb-doc .tnb-search{border-radius:4px!important;cursor:text!important;width:14em}
.tnb-doc .tnb-n{opacity:.8}
.tnb-doc .tnb-chip-failed:not(.tnb-on):not(:disabled){color:#cf222e;border-color:#cf222e}
.tnb-doc .tnb-row{white-space:nowrap;overflow:hidden;text-overflow:ellipsis;line-height:22px}
.tnb-doc .tnb-row.tnb-dim{opacity:.55}
.tnb-doc .tnb-row.tnb-target{background:rgba(207,34,46,.12);outline:1px solid #cf222e}
.tnb-doc .tnb-chev{display:inline-block;width:14px;cursor:pointer;color:
var(--tnb-fg2)}
.tnb-doc .tnb-name{font-weight:600;cursor:pointer}
.tnb-doc .tnb-name:hover{text-decoration:underline}
.tnb-doc .tnb-more-row{color:var(--tnb-brand);font-style:italic;cursor:pointer;
margin-left:14px}
.tnb-doc .tnb-badge.tnb-stale{background:#b45309}
.tnb-doc .tnb-tl-head{margin:2px 0 4px}
.tnb-doc .tnb-tl-axis,.tnb-doc .tnb-tl-row{display:flex;height:20px;align-items:center}
.tnb-doc .tnb-tl-row{position:absolute;left:0;right:0}
.tnb-doc .tnb-tl-row:hover{background:var(--tnb-bg2)}
.tnb-doc .tnb-tl-label{flex:0 0 260px;overflow:hidden;white-space:nowrap;text-overflow:ellipsis;
font-size:12px;box-sizing:border-box}
.tnb-doc .tnb-tl-track{flex:1;position:relative;height:100%;margin-right:40px}
.tnb-doc .tnb-tl-axis .tnb-tl-track{border-bottom:1px solid var(--tnb-border2)}
.tnb-doc .tnb-tick{position:absolute;top:2px;font-size:11px;white-space:nowrap;
color:var(--tnb-fg2);border-left:1px solid var(--tnb-border2);
padding-left:2px;height:16px}
.tnb-doc .tnb-tick-end{transform:translateX(-100%);border-left:none;padding:0 2px 0 0;
border-right:1px solid var(--tnb-border2)}
.tnb-doc .tnb-tl-scroll{overflow-y:auto;position:relative;border-bottom:1px solid
var(--tnb-border2)}
.tnb-doc .tnb-tl-inner{position:relative}
.tnb-doc .tnb-bar,.tnb-doc .tnb-gap{position:absolute;top:4px;height:12px;border-radius:2px;
min-width:2px}
.tnb-doc .tnb-gap{top:9px;height:0;border-top:2px dotted #8c959f;border-radius:0}
.tnb-doc .tnb-bar-wait{background:repeating-linear-gradient(45deg,#bf8700 0 3px,
transparent 3px 6px);border:1px solid #bf8700;box-sizing:border-box}
""" + "".join(f".tnb-doc .tnb-bar-{s}{{background:{COLORS[s]}}}\n" for s in STATUSES)
