/// The page's stylesheet: system fonts only, no external resources, print-friendly.
enum ReportStyle {
    static let css = """
    :root { --ink: #1d2330; --muted: #5f6b7d; --line: #e3e7ee; --bg: #f3f5f8; --card: #ffffff; --accent: #24406e; }
    * { box-sizing: border-box; }
    body { margin: 0; background: var(--bg); color: var(--ink);
           font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
    header.top { background: var(--accent); color: #fff; padding: 18px 0 14px; }
    header.top .inner, main { max-width: 1160px; margin: 0 auto; padding: 0 24px; }
    header.top h1 { margin: 0; font-size: 22px; font-weight: 650; letter-spacing: .2px; }
    header.top p.subtitle { margin: 4px 0 10px; color: #d5deee; }
    nav a { color: #fff; text-decoration: none; margin-right: 18px; font-size: 13px; opacity: .9; border-bottom: 1px solid transparent; }
    nav a:hover { border-bottom-color: #fff; }
    main { padding-top: 8px; padding-bottom: 40px; }
    section.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 20px 18px; margin: 16px 0; }
    h2 { font-size: 17px; margin: 4px 0 10px; color: var(--accent); }
    h3 { font-size: 15px; margin: 14px 0 6px; }
    p.note, .note { color: var(--muted); font-size: 12.5px; margin: 6px 0; }
    .facts { display: flex; flex-wrap: wrap; gap: 10px; }
    .fact { flex: 1 1 170px; border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; background: #fbfcfd; }
    .fact .label { color: var(--muted); font-size: 12px; }
    .fact .value { font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; }
    .fact .sub { color: var(--muted); font-size: 12px; }
    table.metrics { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: 6px 0; }
    table.metrics th, table.metrics td { padding: 5px 12px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
    table.metrics th { font-size: 12.5px; color: var(--muted); font-weight: 600; border-bottom: 2px solid #cfd6e1; }
    table.metrics .name { text-align: left; }
    table.metrics td.case { vertical-align: top; font-weight: 600; }
    table.metrics tr.first td { border-top: 1px solid #cfd6e1; }
    table.metrics .sd { color: var(--muted); }
    table.metrics .n { color: #9a6700; font-size: 11.5px; }
    td.missing { color: #9a6700; text-align: center !important; }
    td.warn { color: #9a6700; font-weight: 600; }
    td.low { background: #fde8e6; } td.mid { background: #fff6dc; }
    .swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
    details { margin: 10px 0 0; }
    details > summary { cursor: pointer; color: var(--accent); font-weight: 600; }
    .charts { display: flex; flex-wrap: wrap; gap: 14px 24px; }
    .charts svg.chart { width: 100%; max-width: 700px; height: auto; border: 1px solid var(--line); border-radius: 6px; }
    .charts text { font-family: inherit; }
    .legend-row { display: flex; flex-wrap: wrap; gap: 6px 18px; align-items: center; margin: 4px 0 8px; }
    .legend-item { display: inline-flex; align-items: center; gap: 6px; }
    .legend-item .fill { width: 18px; height: 14px; border-radius: 2px; opacity: .55; }
    .legend-item .outline { width: 18px; height: 14px; border-radius: 2px; border: 2.5px solid; background: transparent; }
    .case-block { border-top: 1px solid var(--line); margin-top: 14px; padding-top: 6px; }
    .case-block:first-of-type { border-top: none; }
    .case-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 6px 16px; }
    .case-head h3 { margin-bottom: 2px; }
    .chips { display: inline-flex; flex-wrap: wrap; gap: 6px; }
    .chip { font-size: 12px; border: 1px solid var(--line); border-radius: 10px; padding: 1px 8px; background: #fbfcfd; }
    .chip .swatch { width: 9px; height: 9px; margin-right: 4px; }
    .chip-note { font-size: 12px; color: var(--muted); align-self: center; }
    .slice-row { margin: 8px 0 4px; }
    .slice-label { font-size: 12.5px; color: var(--muted); margin: 4px 0; }
    .slice-label b { color: var(--ink); }
    .figures { display: flex; flex-wrap: wrap; gap: 12px 22px; }
    figure { margin: 0; }
    figure img { display: block; max-width: 100%; height: auto; image-rendering: pixelated; background: #000; }
    figcaption { display: flex; font-size: 12px; color: var(--muted); margin-top: 2px; }
    figcaption span { flex: 1; text-align: center; }
    figcaption b { color: var(--ink); }
    pre.config { background: #f6f8fa; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; overflow: auto;
                 font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; max-height: 480px; }
    ul.events { margin: 6px 0; padding-left: 20px; font-size: 13px; }
    footer { color: var(--muted); font-size: 12px; margin: 18px 0 0; }
    @media print { body { background: #fff; } section.card { break-inside: avoid-page; border: none; } header.top { background: #fff; color: #000; } nav { display: none; } }
    """
}
