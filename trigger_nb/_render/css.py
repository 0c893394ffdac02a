"""The stylesheets of the task tree: ``CSS`` for the static HTML (and the live view's HTML),
``WIDGET_CSS`` for the interactive ipywidgets rows. Colours and fonts are ``THEME_CSS``'s
variables, set on every view's ``.tnb`` root: JupyterLab's theme, else VS Code's, else GitHub's
light theme. The status colours are ``tree.COLORS``: one place for every view.
"""

from trigger_nb._render.tree import (
    COLORS,
    COMPLETED,
    FAILED,
    INTERRUPTED,
    REPLAYED,
    RUNNING,
    WAITING,
)

STATUSES = (RUNNING, COMPLETED, REPLAYED, FAILED, WAITING, INTERRUPTED)

# The colours and fonts of every view, each JupyterLab's theme variable, else VS Code's (its
# notebook outputs set ``--vscode-*``: a dark theme gets light text), else a light default.
THEME_CSS = """
.tnb{--tnb-fg:var(--jp-ui-font-color1,var(--vscode-foreground,#1f2328));
--tnb-fg2:var(--jp-ui-font-color2,var(--vscode-descriptionForeground,#656d76));
--tnb-fg3:var(--jp-ui-font-color3,var(--vscode-disabledForeground,#8c959f));
--tnb-bg:var(--jp-layout-color1,var(--vscode-editor-background,#fff));
--tnb-bg2:var(--jp-layout-color2,var(--vscode-editorWidget-background,#eff1f3));
--tnb-border:var(--jp-border-color1,var(--vscode-panel-border,#d0d7de));
--tnb-border2:var(--jp-border-color2,var(--vscode-panel-border,#d0d7de));
--tnb-brand:var(--jp-brand-color1,var(--vscode-textLink-foreground,#1f6feb));
--tnb-font:var(--jp-ui-font-family,var(--vscode-font-family,'DejaVu Sans',sans-serif));
--tnb-code-font:var(--jp-code-font-family,var(--vscode-editor-font-family,'DejaVu Sans Mono',
monospace))}
.tnb a{color:var(--tnb-brand)}"""

CSS = (
    THEME_CSS
    + """
.tnb{font-family:var(--tnb-font);font-size:13px;
color:var(--tnb-fg);line-height:1.45}
.tnb code{font-family:var(--tnb-code-font);font-size:12px}
.tnb-head{margin-bottom:4px}.tnb-name{font-weight:600}.tnb-job{font-weight:600;font-size:14px}
.tnb-version,.tnb-muted,.tnb-meta{color:var(--tnb-fg2)}
.tnb-badge{color:#fff;border-radius:9px;padding:0 8px;font-size:11px;font-weight:600}
.tnb-key{background:var(--tnb-bg2);border-radius:3px;padding:0 4px}
.tnb-glyph{display:inline-block;width:1.2em;text-align:center;font-weight:700}
.tnb-tree details>summary{cursor:pointer;list-style-position:inside}
.tnb-kids{margin-left:14px;border-left:1px solid var(--tnb-border2);
padding-left:6px}
.tnb-body{margin:2px 0 6px 22px;padding:4px 8px;border-left:2px solid
var(--tnb-border2)}
.tnb-body table{border-collapse:collapse;font-size:12px}
.tnb-body td,.tnb-body th{padding:1px 8px 1px 0;text-align:left;vertical-align:top}
.tnb-body pre{margin:2px 0;white-space:pre-wrap;font-size:12px;max-height:24em;overflow:auto}
.tnb-err{color:#cf222e}.tnb-lvl-error{color:#cf222e}.tnb-lvl-warn{color:#bf8700}
.tnb-sep{color:var(--tnb-fg3)}
.tnb-more{color:var(--tnb-fg2);font-style:italic}
.tnb-spin{display:inline-block;animation:tnb-spin 1.2s linear infinite}
@keyframes tnb-spin{to{transform:rotate(360deg)}}
.tnb-badge.tnb-stale{padding:0 6px;margin-left:2px;white-space:nowrap}
.tnb-stale-note{margin:0 0 4px}.tnb-stale-note code{white-space:nowrap}
"""
)

# each status's FontAwesome icon in its colour (the stale badge's stays white)
_STATUS_ICONS = "".join(f".tnb .tnb-st-{s} .fa{{color:{COLORS[s]}}}\n" for s in STATUSES)

WIDGET_CSS = (
    """
.tnb-bridge-in{display:none!important}
.tnb .tnb-jumped{outline:2px solid #cf222e;outline-offset:1px}
.tnb .tnb-finder{flex-wrap:wrap;gap:6px;align-items:center;margin:2px 0 6px}
.tnb .tnb-rows{display:grid;grid-template-columns:20px fit-content(60%) minmax(0,1fr);
align-items:center;column-gap:4px;overflow:visible}
.tnb .tnb-rows>.tnb-leaf{grid-column:2}
.tnb .tnb-rows>.tnb-details,.tnb .tnb-rows>.tnb-children,.tnb .tnb-rows>.tnb-more-btn{
grid-column:1/-1}
.tnb .tnb-children{margin:0 0 0 11px;padding-left:6px;
border-left:1px solid var(--tnb-border2)}
.tnb .jupyter-button.tnb-name-btn,.tnb .jupyter-button.tnb-chevron,
.tnb .jupyter-button.tnb-more-btn{background:none;box-shadow:none;border:none;width:auto;
height:22px;line-height:22px;padding:0 4px;margin:0;text-align:left;
color:var(--tnb-fg)}
.tnb .jupyter-button.tnb-name-btn{font-weight:600}
.tnb .jupyter-button.tnb-name-btn:hover{background:var(--tnb-bg2)}
.tnb .jupyter-button.tnb-chevron{width:20px;padding:0;text-align:center}
.tnb .jupyter-button.tnb-more-btn{color:var(--tnb-brand);font-style:italic;
justify-self:start}
.tnb .tnb-name-btn .fa{margin-right:6px}
.tnb .tnb-badge.tnb-stale .fa{color:#fff;margin:0}
.tnb .tnb-st-running .fa-spinner{animation:tnb-spin 1.2s linear infinite}
.tnb .widget-html,.tnb .widget-html-content{height:auto;line-height:1.45;margin:0}
.tnb .tnb-meta-html .widget-html-content{line-height:22px}
.tnb .tnb-details{margin:2px 0 6px 22px;padding:4px 8px;
border-left:2px solid var(--tnb-border2)}
.tnb .tnb-details pre{margin:2px 0;white-space:pre-wrap;font-size:12px;max-height:24em;
overflow:auto}
.tnb .tnb-details table{border-collapse:collapse;font-size:12px}
.tnb .tnb-details td{padding:1px 8px 1px 0;text-align:left;vertical-align:top}
.tnb .jupyter-button.tnb-show-output{width:auto;align-self:flex-start;margin:4px 0}
"""
    + _STATUS_ICONS
)
