"""The stylesheets of the task tree: ``CSS`` for the static HTML (and the live view's HTML),
``WIDGET_CSS`` for the interactive ipywidgets rows. Colours fall back to GitHub's light theme
outside JupyterLab; inside, they follow its theme variables. The status colours are
``tree.COLORS``: one place for every view.
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

CSS = """
.tnb{font-family:var(--jp-ui-font-family,'DejaVu Sans',sans-serif);font-size:13px;
color:var(--jp-ui-font-color1,#1f2328);line-height:1.45}
.tnb code{font-family:var(--jp-code-font-family,'DejaVu Sans Mono',monospace);font-size:12px}
.tnb-head{margin-bottom:4px}.tnb-name{font-weight:600}.tnb-job{font-weight:600;font-size:14px}
.tnb-version,.tnb-muted,.tnb-meta{color:var(--jp-ui-font-color2,#656d76)}
.tnb-badge{color:#fff;border-radius:9px;padding:0 8px;font-size:11px;font-weight:600}
.tnb-key{background:var(--jp-layout-color2,#eff1f3);border-radius:3px;padding:0 4px}
.tnb-glyph{display:inline-block;width:1.2em;text-align:center;font-weight:700}
.tnb-tree details>summary{cursor:pointer;list-style-position:inside}
.tnb-kids{margin-left:14px;border-left:1px solid var(--jp-border-color2,#d0d7de);
padding-left:6px}
.tnb-body{margin:2px 0 6px 22px;padding:4px 8px;border-left:2px solid
var(--jp-border-color2,#d0d7de)}
.tnb-body table{border-collapse:collapse;font-size:12px}
.tnb-body td,.tnb-body th{padding:1px 8px 1px 0;text-align:left;vertical-align:top}
.tnb-body pre{margin:2px 0;white-space:pre-wrap;font-size:12px;max-height:24em;overflow:auto}
.tnb-err{color:#cf222e}.tnb-lvl-error{color:#cf222e}.tnb-lvl-warn{color:#bf8700}
.tnb-sep{color:var(--jp-ui-font-color3,#8c959f)}
.tnb-more{color:var(--jp-ui-font-color2,#656d76);font-style:italic}
.tnb-spin{display:inline-block;animation:tnb-spin 1.2s linear infinite}
@keyframes tnb-spin{to{transform:rotate(360deg)}}
.tnb-badge.tnb-stale{padding:0 6px;margin-left:2px;white-space:nowrap}
.tnb-stale-note{margin:0 0 4px}.tnb-stale-note code{white-space:nowrap}
"""

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
border-left:1px solid var(--jp-border-color2,#d0d7de)}
.tnb .jupyter-button.tnb-name-btn,.tnb .jupyter-button.tnb-chevron,
.tnb .jupyter-button.tnb-more-btn{background:none;box-shadow:none;border:none;width:auto;
height:22px;line-height:22px;padding:0 4px;margin:0;text-align:left;
color:var(--jp-ui-font-color1,#1f2328)}
.tnb .jupyter-button.tnb-name-btn{font-weight:600}
.tnb .jupyter-button.tnb-name-btn:hover{background:var(--jp-layout-color2,#eff1f3)}
.tnb .jupyter-button.tnb-chevron{width:20px;padding:0;text-align:center}
.tnb .jupyter-button.tnb-more-btn{color:var(--jp-brand-color1,#1f6feb);font-style:italic;
justify-self:start}
.tnb .tnb-name-btn .fa{margin-right:6px}
.tnb .tnb-badge.tnb-stale .fa{color:#fff;margin:0}
.tnb .tnb-st-running .fa-spinner{animation:tnb-spin 1.2s linear infinite}
.tnb .widget-html,.tnb .widget-html-content{height:auto;line-height:1.45;margin:0}
.tnb .tnb-meta-html .widget-html-content{line-height:22px}
.tnb .tnb-details{margin:2px 0 6px 22px;padding:4px 8px;
border-left:2px solid var(--jp-border-color2,#d0d7de)}
.tnb .tnb-details pre{margin:2px 0;white-space:pre-wrap;font-size:12px;max-height:24em;
overflow:auto}
.tnb .tnb-details table{border-collapse:collapse;font-size:12px}
.tnb .tnb-details td{padding:1px 8px 1px 0;text-align:left;vertical-align:top}
.tnb .jupyter-button.tnb-show-output{width:auto;align-self:flex-start;margin:4px 0}
"""
    + _STATUS_ICONS
)
