import GameRules
/// The site's stylesheet. System fonts only; no inline styles anywhere (the CSP forbids them), so
/// holder colours are classes `h0`…`h71` (hue = 5° × class), generated below.
enum WebStyle {
    static let hueClasses = 72

    static var css: String {
        var hues = ""
        for i in 0..<hueClasses {
            hues += ".h\(i){background:hsl(\(i * 5) 70% 78%)}.map .h\(i){border-color:hsl(\(i * 5) 55% 55%)}.p\(i){background:hsl(\(i * 5) 70% 60%)}\n"
        }
        return base + hues
    }

    static let base = """
    :root{--bg:#f7f8f5;--fg:#1b1f1d;--muted:#5b625e;--line:#c9cfca;--accent:#0b5d3b;--card:#fff}
    *{box-sizing:border-box}
    html{-webkit-text-size-adjust:100%}
    body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Ubuntu,sans-serif}
    code,.mono,.tile,.ip{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,"DejaVu Sans Mono",monospace}
    a{color:var(--accent)}
    a:focus-visible,button:focus-visible,input:focus-visible,summary:focus-visible{outline:3px solid #e08a00;outline-offset:2px}
    .skip{position:absolute;left:-999px;top:0;background:#fff;padding:.5em}
    .skip:focus{left:.5em;z-index:9}
    header.top{background:#0b3d28;color:#fff;padding:.6em 1em;display:flex;flex-wrap:wrap;gap:.2em 1em;align-items:baseline}
    header.top a{color:#fff;text-decoration:none}
    header.top h1{margin:0;font-size:1.35em}
    header.top p{margin:0;color:#cfe3d8;font-size:.9em}
    main{max-width:1400px;margin:0 auto;padding:.5em 1em 2em}
    h2{font-size:1.15em;margin:1.2em 0 .4em}
    section{min-width:0}
    .grid2{display:grid;grid-template-columns:1fr;gap:0 2em}
    @media (min-width:900px){.grid2{grid-template-columns:1fr 1fr}}
    .card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.7em 1em}
    form.claim{display:flex;flex-wrap:wrap;gap:.5em;align-items:center}
    form.claim input{font:inherit;padding:.35em .5em;border:1px solid #8a948e;border-radius:4px;min-width:0;flex:1 1 12em;max-width:24em}
    button,.button{font:inherit;padding:.35em .8em;border:1px solid var(--accent);background:var(--accent);color:#fff;border-radius:4px;cursor:pointer;text-decoration:none;display:inline-block}
    button.quiet,.button.quiet{background:#fff;color:var(--accent)}
    .msg{min-height:1.4em;margin:.3em 0;color:var(--muted)}
    .msg.bad{color:#a40e0e}
    .msg.good{color:#0b5d3b}
    .url{display:flex;flex-wrap:wrap;gap:.5em;align-items:center;margin:.4em 0}
    .url code{background:#eef1ee;padding:.25em .4em;border-radius:3px;overflow-wrap:anywhere;word-break:break-all}
    .muted{color:var(--muted)}
    .periods{display:flex;flex-wrap:wrap;gap:.3em;margin:.3em 0 .6em;padding:0;list-style:none}
    .periods a{display:inline-block;padding:.15em .6em;border:1px solid var(--line);border-radius:999px;text-decoration:none;background:#fff}
    .periods a[aria-current]{background:var(--accent);border-color:var(--accent);color:#fff}
    ol.board,ol.recent{margin:0;padding:0;list-style:none}
    ol.board li,ol.recent li{display:flex;flex-wrap:wrap;gap:0 .6em;padding:.3em 0;border-bottom:1px solid #e3e7e4;align-items:baseline}
    ol.board .rank{min-width:2.2em;font-weight:600;text-align:right}
    ol.board .name,ol.recent .name{font-weight:600;overflow-wrap:anywhere;min-width:0}
    ol.board .stats{color:var(--muted);margin-left:auto}
    ol.recent .ip{min-width:8.5em}
    ol.recent time{color:var(--muted);margin-left:auto}
    .empty-note{color:var(--muted);font-style:italic}
    .more-link{margin:.5em 0}
    .map{list-style:none;margin:0;padding:0;display:grid;grid-template-columns:repeat(4,minmax(0,1fr));gap:3px}
    @media (min-width:560px){.map{grid-template-columns:repeat(8,minmax(0,1fr))}}
    @media (min-width:1100px){.map{grid-template-columns:repeat(16,minmax(0,1fr))}}
    .tile{position:relative;border:1px solid var(--line);border-radius:3px;padding:2px 4px;font-size:11px;line-height:1.3;min-height:3.6em;background:#fff;overflow:hidden;display:flex;flex-direction:column}
    .tile .cidr{font-weight:700;color:var(--fg);text-decoration:none}
    .tile .who{overflow:hidden;text-overflow:ellipsis;white-space:nowrap;display:block}
    .tile .n{color:#333}
    .tile.empty{background:#eceeed;color:#7a817d}
    .tile.empty .cidr{color:#7a817d}
    .tile.tied{background:repeating-linear-gradient(135deg,#e2e5e3 0 5px,#c4c9c6 5px 10px)}
    .tile.reserved{border-style:dashed;border-color:#7a817d}
    .tile .rsv{position:absolute;right:3px;bottom:1px;font-size:8px;text-transform:uppercase;color:#6b3d00;letter-spacing:.03em}
    .tile.flash{animation:flash 2s ease-out}
    @keyframes flash{0%{box-shadow:0 0 0 3px #e08a00;transform:scale(1.08)}100%{box-shadow:0 0 0 0 transparent;transform:none}}
    @media (prefers-reduced-motion:reduce){.tile.flash{animation:none;outline:3px solid #e08a00}}
    .legend{display:flex;flex-wrap:wrap;gap:.4em 1em;font-size:.9em;color:var(--muted);margin:.3em 0 .6em;padding:0;list-style:none}
    .swatch{display:inline-block;width:1em;height:1em;border:1px solid #999;vertical-align:-2px;margin-right:.3em;border-radius:2px}
    .swatch.tied{background:repeating-linear-gradient(135deg,#e2e5e3 0 3px,#c4c9c6 3px 6px)}
    .swatch.empty{background:#eceeed}
    .swatch.reserved{border-style:dashed;background:#fff}
    .swatch.tiedpx{background:#8c8c8c}
    .swatch.emptypx{background:#f1f1f1}
    .status{font-size:.9em;color:var(--muted)}
    table.top{border-collapse:collapse;width:100%;max-width:40em}
    table.top th,table.top td{text-align:left;padding:.3em .5em;border-bottom:1px solid #e3e7e4;overflow-wrap:anywhere}
    table.top td.num,table.top th.num{text-align:right}
    .hilbert{display:block;width:100%;max-width:512px;height:auto;image-rendering:pixelated;border:1px solid var(--line);background:#f1f1f1}
    ul.standings{padding-left:1.2em}
    ul.standings li{margin:.2em 0}
    svg.bars{width:100%;max-width:640px;height:auto;display:block;background:#fff;border:1px solid var(--line)}
    svg.bars .bar{fill:#9aa59f}
    svg.bars .held{fill:#0b5d3b}
    svg.bars .axis{fill:#5b625e;font-size:10px}
    svg.bars line{stroke:#c9cfca}
    svg.history{width:100%;max-width:560px;height:auto;display:block;background:#fff;border:1px solid var(--line);margin-bottom:1rem}
    svg.history .bar{fill:#0b5d3b}
    svg.history .axis{fill:#5b625e;font-size:10px}
    svg.history line{stroke:#c9cfca}
    figure.spacemap{margin:0 0 1rem}
    figure.spacemap img{display:block;width:256px;height:256px;image-rendering:pixelated;border:1px solid var(--line);background:#f1f1f1}
    figure.spacemap figcaption{color:#5b625e;font-size:.85rem;max-width:40rem}
    footer{max-width:1400px;margin:0 auto;padding:1em;color:var(--muted);font-size:.85em}
    .notfound{font-size:1.1em}
    noscript p{background:#fff7e0;border:1px solid #e0c36a;padding:.4em .7em;border-radius:4px}

    """
}
