import Foundation

/// A self-contained SVG line chart (no scripts, no external references) for inline use in HTML:
/// title, legend, axes with "nice" ticks and grid lines, linear or logarithmic y axis, optional
/// light smoothing (the raw curve is then drawn faint underneath) and point markers with tooltips.
///
/// Each drawn curve is one `<path class="series" data-series="NAME" d="M x y L x y …">` with one
/// `M`/`L` command per point; a smoothed series has the same number of points as its raw curve
/// (`class="raw"`). Series longer than `maxPoints` are thinned (per-bucket minimum and maximum kept).
/// Non-finite points, and non-positive values on a log axis, are left out. An empty chart says
/// `emptyMessage`; a single point is drawn as a marker.
public struct SVGLineChart {
    public struct Series {
        public var name: String
        public var points: [(x: Double, y: Double)]
        /// CSS colour.
        public var color: String
        public var lineWidth: Double
        public var dashed: Bool
        /// Circles at the points (with a tooltip), for sparse series such as validation.
        public var markers: Bool
        /// Light smoothing (debiased exponential moving average over about 1/40 of the points).
        public var smooth: Bool
        /// Short text after the name in the legend (e.g. the last value).
        public var note: String?

        public init(name: String, points: [(x: Double, y: Double)], color: String, lineWidth: Double = 1.8,
                    dashed: Bool = false, markers: Bool = false, smooth: Bool = false, note: String? = nil) {
            self.name = name
            self.points = points
            self.color = color
            self.lineWidth = lineWidth
            self.dashed = dashed
            self.markers = markers
            self.smooth = smooth
            self.note = note
        }
    }

    public enum Scale: Sendable { case linear, log }

    /// Unique within the page (used for the clip path's id).
    public var id: String
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    public var width: Double
    public var height: Double
    public var yScale: Scale
    /// Fixed y bounds (linear axis); nil = from the data, extended to nice tick values.
    public var yMin: Double?
    public var yMax: Double?
    /// Linear axis: start at 0 when every value is positive.
    public var includeZero: Bool
    public var emptyMessage: String
    public var maxPoints: Int
    /// Integral x ticks only (iterations).
    public var integerX: Bool

    public init(id: String, title: String, xLabel: String, yLabel: String, series: [Series],
                width: Double = 700, height: Double = 300, yScale: Scale = .linear,
                yMin: Double? = nil, yMax: Double? = nil, includeZero: Bool = false,
                emptyMessage: String = "no data", maxPoints: Int = 1500, integerX: Bool = false) {
        self.id = id
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.width = width
        self.height = height
        self.yScale = yScale
        self.yMin = yMin
        self.yMax = yMax
        self.includeZero = includeZero
        self.emptyMessage = emptyMessage
        self.maxPoints = maxPoints
        self.integerX = integerX
    }

    // MARK: - Rendering

    static let fontSize = 12.0
    static func textWidth(_ text: String, size: Double = fontSize) -> Double { Double(text.count) * size * 0.56 }

    public func svg() -> String {
        let esc = ReportMarkup.escape
        let log = yScale == .log
        // Clean points per series.
        let cleaned: [[(x: Double, y: Double)]] = series.map { s in
            s.points.filter { $0.x.isFinite && $0.y.isFinite && (!log || $0.y > 0) }.sorted { $0.x < $1.x }
        }
        let all = cleaned.flatMap { $0 }

        // Legend layout (rows that wrap inside the width).
        var legendItems: [(x: Double, row: Int, index: Int, label: String)] = []
        let legendLeft = 12.0
        var cursor = legendLeft, row = 0
        for (index, s) in series.enumerated() {
            let label = s.note.map { "\(s.name)  \($0)" } ?? s.name
            let itemWidth = 26 + Self.textWidth(label) + 18
            if cursor + itemWidth > width - 8 && cursor > legendLeft { row += 1; cursor = legendLeft }
            legendItems.append((cursor, row, index, label))
            cursor += itemWidth
        }
        let titleY = 20.0
        let legendTop = 40.0
        let legendRows = series.isEmpty ? 0 : row + 1
        let plotTop = legendTop + Double(legendRows) * 18 + 4

        var out = "<svg class=\"chart\" id=\"\(esc(id))\" viewBox=\"0 0 \(fmt(width)) \(fmt(height))\" width=\"\(fmt(width))\" height=\"\(fmt(height))\" role=\"img\" aria-label=\"\(esc(title))\">"
        out += "<title>\(esc(title))</title>"
        out += "<rect x=\"0\" y=\"0\" width=\"\(fmt(width))\" height=\"\(fmt(height))\" fill=\"#ffffff\"/>"
        out += "<text x=\"12\" y=\"\(fmt(titleY))\" font-size=\"14\" font-weight=\"600\" fill=\"#222\">\(esc(title))</text>"

        guard !all.isEmpty else {
            out += "<rect x=\"12\" y=\"\(fmt(plotTop))\" width=\"\(fmt(width - 24))\" height=\"\(fmt(max(20, height - plotTop - 12)))\" fill=\"#fafafa\" stroke=\"#ddd\"/>"
            out += "<text class=\"no-data\" x=\"\(fmt(width / 2))\" y=\"\(fmt((plotTop + height) / 2))\" text-anchor=\"middle\" font-size=\"13\" fill=\"#888\">\(esc(emptyMessage))</text>"
            return out + "</svg>"
        }

        // Domains and ticks.
        let xs = all.map(\.x), ys = all.map(\.y)
        let xTicks = Self.linearTicks(lo: xs.min()!, hi: xs.max()!, target: max(3, Int(width / 110)), minStep: integerX ? 1 : 0)
        let xDomain = (xTicks.first!, xTicks.last!)
        var yTicks: [Double]
        var yDomain: (Double, Double)
        if log {
            let lo = log10(ys.min()!), hi = log10(ys.max()!)
            let pad = hi - lo < 1e-9 ? 0.15 : 0.04 * (hi - lo)
            yDomain = (lo - pad, hi + pad)
            yTicks = Self.logTicks(loExponent: yDomain.0, hiExponent: yDomain.1)
        } else {
            var lo = yMin ?? ys.min()!, hi = yMax ?? ys.max()!
            if includeZero && yMin == nil && lo > 0 { lo = 0 }
            if includeZero && yMax == nil && hi < 0 { hi = 0 }
            let ticks = Self.linearTicks(lo: lo, hi: hi, target: max(3, Int((height - plotTop - 40) / 45)))
            yDomain = (yMin ?? ticks.first!, yMax ?? ticks.last!)
            if yDomain.1 <= yDomain.0 { yDomain.1 = yDomain.0 + 1 }
            yTicks = ticks.filter { $0 >= yDomain.0 - 1e-12 && $0 <= yDomain.1 + 1e-12 }
        }
        let yTickLabels = log ? Self.logTickLabels(yTicks) : yTicks.map { Self.tickLabel($0, ticks: yTicks) }
        let xTickLabels = xTicks.map { Self.tickLabel($0, ticks: xTicks) }

        let maxLabel = yTickLabels.map { Self.textWidth($0) }.max() ?? 20
        let left = 26 + maxLabel + 8
        let right = width - 16
        let bottom = height - 44
        let plotWidth = max(10, right - left), plotHeight = max(10, bottom - plotTop)
        func px(_ x: Double) -> Double {
            left + (xDomain.1 == xDomain.0 ? 0.5 : (x - xDomain.0) / (xDomain.1 - xDomain.0)) * plotWidth
        }
        func py(_ y: Double) -> Double {
            let v = log ? log10(y) : y
            return bottom - (yDomain.1 == yDomain.0 ? 0.5 : (v - yDomain.0) / (yDomain.1 - yDomain.0)) * plotHeight
        }

        // Grid, ticks, labels.
        out += "<g class=\"grid\" stroke=\"#e6e6e6\" stroke-width=\"1\">"
        for t in xTicks { out += "<line x1=\"\(fmt(px(t)))\" y1=\"\(fmt(plotTop))\" x2=\"\(fmt(px(t)))\" y2=\"\(fmt(bottom))\"/>" }
        for t in yTicks { let y = py(log ? pow(10, t) : t); out += "<line x1=\"\(fmt(left))\" y1=\"\(fmt(y))\" x2=\"\(fmt(right))\" y2=\"\(fmt(y))\"/>" }
        out += "</g>"
        out += "<g class=\"axes\" stroke=\"#555\" stroke-width=\"1\" fill=\"none\">"
        out += "<line x1=\"\(fmt(left))\" y1=\"\(fmt(bottom))\" x2=\"\(fmt(right))\" y2=\"\(fmt(bottom))\"/>"
        out += "<line x1=\"\(fmt(left))\" y1=\"\(fmt(plotTop))\" x2=\"\(fmt(left))\" y2=\"\(fmt(bottom))\"/>"
        for t in xTicks { out += "<line x1=\"\(fmt(px(t)))\" y1=\"\(fmt(bottom))\" x2=\"\(fmt(px(t)))\" y2=\"\(fmt(bottom + 4))\"/>" }
        for t in yTicks { let y = py(log ? pow(10, t) : t); out += "<line x1=\"\(fmt(left - 4))\" y1=\"\(fmt(y))\" x2=\"\(fmt(left))\" y2=\"\(fmt(y))\"/>" }
        out += "</g>"
        out += "<g class=\"tick-labels\" font-size=\"\(fmt(Self.fontSize))\" fill=\"#444\">"
        for (t, label) in zip(xTicks, xTickLabels) {
            out += "<text x=\"\(fmt(px(t)))\" y=\"\(fmt(bottom + 17))\" text-anchor=\"middle\">\(esc(label))</text>"
        }
        for (t, label) in zip(yTicks, yTickLabels) {
            let y = py(log ? pow(10, t) : t)
            out += "<text x=\"\(fmt(left - 7))\" y=\"\(fmt(y + 4))\" text-anchor=\"end\">\(esc(label))</text>"
        }
        out += "</g>"
        out += "<text class=\"axis-label\" x=\"\(fmt(left + plotWidth / 2))\" y=\"\(fmt(height - 8))\" text-anchor=\"middle\" font-size=\"12\" fill=\"#333\">\(esc(xLabel))</text>"
        let yLabelText = log ? "\(yLabel) (log scale)" : yLabel
        out += "<text class=\"axis-label\" transform=\"translate(14 \(fmt(plotTop + plotHeight / 2))) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\" fill=\"#333\">\(esc(yLabelText))</text>"

        // Curves, clipped to the plot area.
        out += "<defs><clipPath id=\"clip-\(esc(id))\"><rect x=\"\(fmt(left - 3))\" y=\"\(fmt(plotTop - 3))\" width=\"\(fmt(plotWidth + 6))\" height=\"\(fmt(plotHeight + 6))\"/></clipPath></defs>"
        out += "<g clip-path=\"url(#clip-\(esc(id)))\" fill=\"none\" stroke-linejoin=\"round\" stroke-linecap=\"round\">"
        var markerLayer = ""
        for (s, points) in zip(series, cleaned) where !points.isEmpty {
            let name = esc(s.name)
            let dash = s.dashed ? " stroke-dasharray=\"6 4\"" : ""
            let smoothed = s.smooth ? Self.smoothed(points, log: log) : nil
            if let smoothed {
                let raw = Self.thinned(points, maxPoints: maxPoints)
                out += "<path class=\"raw\" data-series=\"\(name)\" d=\"\(path(raw, px, py))\" stroke=\"\(esc(s.color))\" stroke-opacity=\"0.22\" stroke-width=\"1\"/>"
                let line = Self.strided(smoothed, maxPoints: maxPoints)
                out += "<path class=\"series\" data-series=\"\(name)\" d=\"\(path(line, px, py))\" stroke=\"\(esc(s.color))\" stroke-width=\"\(fmt(s.lineWidth))\"\(dash)/>"
            } else if points.count > 1 {
                let line = Self.thinned(points, maxPoints: maxPoints)
                out += "<path class=\"series\" data-series=\"\(name)\" d=\"\(path(line, px, py))\" stroke=\"\(esc(s.color))\" stroke-width=\"\(fmt(s.lineWidth))\"\(dash)/>"
            }
            if (s.markers && points.count <= 300) || points.count == 1 {
                for p in points {
                    markerLayer += "<circle cx=\"\(fmt(px(p.x)))\" cy=\"\(fmt(py(p.y)))\" r=\"3\" fill=\"\(esc(s.color))\" stroke=\"#fff\" stroke-width=\"1\">"
                    markerLayer += "<title>\(name): \(esc(xLabel)) \(esc(ReportMarkup.compact(p.x, significant: 6))) → \(esc(ReportMarkup.compact(p.y, significant: 4)))</title></circle>"
                }
            }
        }
        out += "</g><g class=\"markers\">\(markerLayer)</g>"

        // Legend.
        out += "<g class=\"legend\" font-size=\"\(fmt(Self.fontSize))\" fill=\"#333\">"
        for item in legendItems {
            let s = series[item.index]
            let y = legendTop + Double(item.row) * 18
            let dash = s.dashed ? " stroke-dasharray=\"5 3\"" : ""
            out += "<line x1=\"\(fmt(item.x))\" y1=\"\(fmt(y - 4))\" x2=\"\(fmt(item.x + 20))\" y2=\"\(fmt(y - 4))\" stroke=\"\(esc(s.color))\" stroke-width=\"\(fmt(max(2, s.lineWidth)))\"\(dash)/>"
            if s.markers { out += "<circle cx=\"\(fmt(item.x + 10))\" cy=\"\(fmt(y - 4))\" r=\"3\" fill=\"\(esc(s.color))\"/>" }
            out += "<text x=\"\(fmt(item.x + 26))\" y=\"\(fmt(y))\">\(esc(s.name))"
            if let note = s.note { out += "<tspan fill=\"#777\">  \(esc(note))</tspan>" }
            out += "</text>"
        }
        out += "</g></svg>"
        return out
    }

    private func path(_ points: [(x: Double, y: Double)], _ px: (Double) -> Double, _ py: (Double) -> Double) -> String {
        var d = ""
        d.reserveCapacity(points.count * 16)
        for (i, p) in points.enumerated() {
            d += (i == 0 ? "M" : " L") + "\(fmt(px(p.x))) \(fmt(py(p.y)))"
        }
        return d
    }

    private func fmt(_ v: Double) -> String { Self.fmt(v) }

    /// One decimal, no trailing ".0".
    static func fmt(_ v: Double) -> String {
        let r = (v * 10).rounded() / 10
        if r == r.rounded() { return String(Int(r)) }
        return String(format: "%.1f", r)
    }

    // MARK: - Ticks

    /// Nice linear ticks (steps of 1, 2, 2.5 or 5 times a power of ten) covering [lo, hi].
    static func linearTicks(lo: Double, hi: Double, target: Int, minStep: Double = 0) -> [Double] {
        var lo = lo, hi = hi
        if hi < lo { swap(&lo, &hi) }
        if hi - lo < 1e-12 * max(1, abs(hi)) {
            let pad = max(minStep, lo == 0 ? 1 : abs(lo) * 0.1)
            lo -= pad; hi += pad
        }
        let rough = max((hi - lo) / Double(max(1, target)), minStep)
        let magnitude = pow(10, floor(log10(rough)))
        let normalized = rough / magnitude
        let mantissa: Double = normalized <= 1 ? 1 : normalized <= 2 ? 2 : normalized <= 2.5 ? 2.5 : normalized <= 5 ? 5 : 10
        let exponent = Int(floor(log10(rough)))
        let step = mantissa * pow(10, Double(exponent))
        // n * step computed as n * mantissa scaled by a power of ten, so that 3 x 0.2 is 0.6 exactly.
        func tick(_ n: Int) -> Double {
            exponent < 0 ? Double(n) * mantissa / pow(10, Double(-exponent)) : Double(n) * mantissa * pow(10, Double(exponent))
        }
        let firstIndex = Int(floor(lo / step + 1e-9)), lastIndex = Int(ceil(hi / step - 1e-9))
        guard lastIndex - firstIndex < 1000 else { return [lo, hi] }
        return (firstIndex...max(firstIndex + 1, lastIndex)).map(tick)
    }

    /// Log-axis ticks as exponents (log10 values) inside [lo, hi]: decades, with 2 and 5 (or every
    /// integer mantissa) added when few decades are shown.
    static func logTicks(loExponent lo: Double, hiExponent hi: Double) -> [Double] {
        func within(_ mantissas: [Double]) -> [Double] {
            var out: [Double] = []
            for decade in Int(floor(lo))...Int(ceil(hi)) {
                for m in mantissas {
                    let e = log10(m) + Double(decade)
                    if e >= lo - 1e-9 && e <= hi + 1e-9 { out.append(e) }
                }
            }
            return out
        }
        let decades = within([1])
        if decades.count >= 4 { return decades.count > 8 ? decades.enumerated().filter { $0.offset % 2 == 0 }.map(\.element) : decades }
        let withHalves = within([1, 2, 5])
        if withHalves.count >= 3 { return withHalves }
        return within([1, 2, 3, 4, 5, 6, 7, 8, 9])
    }

    /// Labels of log ticks (exponents): plain decimals, or all in scientific notation ("1e-4") when
    /// one of them would need it, so that the axis reads uniformly.
    static func logTickLabels(_ exponents: [Double]) -> [String] {
        let values = exponents.map { pow(10, $0) }
        let scientific = values.contains { $0 < 1e-3 || $0 >= 1e6 }
        return values.map { v in
            guard scientific else { return ReportMarkup.compact(v) }
            let e = Int(floor(log10(v) + 1e-9))
            let m = v / pow(10, Double(e))
            let mantissa = ReportMarkup.trimZeros(String(format: "%.2f", m))
            return mantissa == "1" ? "1e\(e)" : "\(mantissa)e\(e)"
        }
    }

    /// Tick label with as many decimals as the tick step needs; "12k" style for large round values.
    static func tickLabel(_ value: Double, ticks: [Double]) -> String {
        let step = ticks.count > 1 ? abs(ticks[1] - ticks[0]) : max(abs(value), 1)
        let largest = ticks.map { abs($0) }.max() ?? abs(value)
        if largest >= 10_000 && step >= 500 && value != 0 {
            return ReportMarkup.trimZeros(String(format: "%.1f", value / 1000)) + "k"
        }
        if step > 0 && (step < 1e-3 || largest >= 1e6) {
            guard value != 0 else { return "0" }
            let e = Int(floor(log10(abs(value)) + 1e-9))
            let mantissa = ReportMarkup.trimZeros(String(format: "%.2f", value / pow(10, Double(e))))
            return (mantissa == "1" ? "1" : mantissa == "-1" ? "-1" : mantissa) + "e\(e)"
        }
        var decimals = max(0, -Int(floor(log10(step) + 1e-9)))
        if abs(step * pow(10, Double(decimals)) - (step * pow(10, Double(decimals))).rounded()) > 1e-6 { decimals += 1 }
        return ReportMarkup.fixed(value, decimals)
    }

    // MARK: - Smoothing and thinning

    /// Debiased exponential moving average over about 1/40 of the points (geometric on a log axis);
    /// nil when that window is shorter than 2 points (the raw curve is then drawn alone).
    static func smoothed(_ points: [(x: Double, y: Double)], log: Bool) -> [(x: Double, y: Double)]? {
        let span = min(100, Double(points.count) / 40)
        guard span >= 2 else { return nil }
        let alpha = 2 / (span + 1)
        var average = 0.0, weight = 0.0
        return points.map { p in
            let v = log ? Foundation.log(p.y) : p.y
            average = (1 - alpha) * average + alpha * v
            weight = (1 - alpha) * weight + alpha
            let s = average / weight
            return (p.x, log ? exp(s) : s)
        }
    }

    /// At most `maxPoints` evenly spaced points, the last one kept (for already smooth curves).
    static func strided(_ points: [(x: Double, y: Double)], maxPoints: Int) -> [(x: Double, y: Double)] {
        guard points.count > maxPoints, maxPoints >= 2 else { return points }
        return (0..<maxPoints).map { points[$0 * (points.count - 1) / (maxPoints - 1)] }
    }

    /// At most about `maxPoints` points: the minimum and maximum of each x bucket, in x order.
    static func thinned(_ points: [(x: Double, y: Double)], maxPoints: Int) -> [(x: Double, y: Double)] {
        guard points.count > maxPoints, maxPoints >= 4 else { return points }
        let buckets = maxPoints / 2
        var out: [(x: Double, y: Double)] = []
        out.reserveCapacity(maxPoints + 2)
        for b in 0..<buckets {
            let start = b * points.count / buckets, end = (b + 1) * points.count / buckets
            guard start < end else { continue }
            var lo = start, hi = start
            for i in start..<end {
                if points[i].y < points[lo].y { lo = i }
                if points[i].y > points[hi].y { hi = i }
            }
            if lo == hi { out.append(points[lo]) } else { out.append(points[min(lo, hi)]); out.append(points[max(lo, hi)]) }
        }
        return out
    }
}
