import Foundation

/// Text helpers shared by the HTML page and its inline SVG charts.
enum ReportMarkup {
    /// Escapes text for HTML/SVG element content and attribute values.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for ch in text {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(ch)
            }
        }
        return out
    }

    /// A number with `decimals` digits after the point; "–" for nil or non-finite.
    static func fixed(_ value: Double?, _ decimals: Int) -> String {
        guard let value, value.isFinite else { return "–" }
        let text = String(format: "%.\(decimals)f", value)
        return text == "-" + String(format: "%.\(decimals)f", 0.0) ? String(format: "%.\(decimals)f", 0.0) : text
    }

    /// A compact general number (axis ticks, legend values): up to `significant` significant digits,
    /// no trailing zeros, scientific notation for very small or large magnitudes.
    static func compact(_ value: Double, significant: Int = 3) -> String {
        guard value.isFinite else { return "–" }
        if value == 0 { return "0" }
        let magnitude = abs(value)
        if magnitude < 1e-3 || magnitude >= 1e6 {
            let exponent = Int(floor(log10(magnitude)))
            let mantissa = value / pow(10, Double(exponent))
            return trimZeros(String(format: "%.\(max(0, significant - 1))f", mantissa)) + "e\(exponent)"
        }
        let decimals = max(0, significant - 1 - Int(floor(log10(magnitude))))
        return trimZeros(String(format: "%.\(decimals)f", value))
    }

    static func trimZeros(_ text: String) -> String {
        guard text.contains(".") else { return text }
        var out = text
        while out.hasSuffix("0") { out.removeLast() }
        if out.hasSuffix(".") { out.removeLast() }
        return out
    }

    /// "1 h 02 min", "3 min 05 s", "12.3 s".
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "–" }
        if seconds < 60 { return String(format: "%.1f s", seconds) }
        let total = Int(seconds.rounded())
        let h = total / 3600, m = (total % 3600) / 60, s = total % 60
        if h > 0 { return String(format: "%d h %02d min", h, m) }
        return String(format: "%d min %02d s", m, s)
    }

    /// Name of a class key: the class name when the key is an integer with a name, else the key.
    static func className(_ key: String, _ names: [Int: String]) -> String {
        if let label = Int(key) { return names[label] ?? "class \(label)" }
        return key
    }

    /// Orders class keys numerically when both are integers, otherwise as strings.
    static func classKeyOrder(_ a: String, _ b: String) -> Bool {
        switch (Int(a), Int(b)) {
        case let (x?, y?): return x < y
        case (_?, nil): return true
        case (nil, _?): return false
        default: return a < b
        }
    }
}

/// Colours of the report: one per class label (colour-blind-safe Okabe–Ito hues first, the same in
/// the slice overlays, the Dice curves and the legend) and one per loss term.
public enum ReportPalette {
    /// Class colours as RGB, for labels 1, 2, 3, … (cycled beyond the list).
    public static let classColors: [(UInt8, UInt8, UInt8)] = [
        (230, 159, 0),    // orange
        (86, 180, 233),   // sky blue
        (0, 158, 115),    // bluish green
        (240, 228, 66),   // yellow
        (204, 121, 167),  // reddish purple
        (213, 94, 0),     // vermillion
        (0, 114, 178),    // blue
        (148, 103, 189),  // violet
        (140, 86, 75),    // brown
        (23, 190, 207),   // cyan
    ]

    /// RGB of class `label` (>= 1).
    public static func rgb(forClass label: Int) -> (UInt8, UInt8, UInt8) {
        let n = classColors.count
        return classColors[((max(label, 1) - 1) % n + n) % n]
    }

    /// CSS hex colour of class `label`.
    public static func css(forClass label: Int) -> String {
        let (r, g, b) = rgb(forClass: label)
        return String(format: "#%02x%02x%02x", r, g, b)
    }

    /// A darker shade of the class colour for thin lines on white (yellow is unreadable otherwise).
    public static func cssLine(forClass label: Int) -> String {
        let (r, g, b) = rgb(forClass: label)
        let luminance = 0.2126 * Double(r) + 0.7152 * Double(g) + 0.0722 * Double(b)
        let f = luminance > 170 ? 0.72 : 1.0
        return String(format: "#%02x%02x%02x", Int(Double(r) * f), Int(Double(g) * f), Int(Double(b) * f))
    }

    /// Loss-term colours, in order of appearance; "total" is always near-black.
    static let lossColors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]
    static let totalColor = "#222222"
}
