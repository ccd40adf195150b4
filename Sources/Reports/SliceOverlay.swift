import Foundation
import Volumes

/// One rendered slice of one modality of one case.
public struct SliceOverlay {
    public var modality: String
    /// Slice index along k of the prediction's grid.
    public var k: Int
    /// Why this slice ("25 % of the reference's extent", …).
    public var reason: String
    public var orientation: SliceOrientation
    /// Intensity window used (1st and 99th percentile of the image volume).
    public var window: (low: Float, high: Float)
    /// Two panels side by side: the windowed image alone | the image with the reference filled
    /// (translucent class colour) and the prediction outlined (opaque class colour).
    public var image: PNGImage
}

/// Renders slice overlays: slice choice, intensity windowing, resampling onto the prediction's
/// grid, radiological orientation, anisotropy correction and nearest-neighbour upscaling.
public enum SliceOverlayRenderer {
    /// Opacity of the reference fill.
    static let fillAlpha = 0.42
    /// White gap between the two panels, in pixels.
    static let panelGap = 6

    /// Renders `slices` k-slices per modality of a case (fewer when the foreground is thin).
    public static func render(_ reportCase: ReportCase, slices: Int = 3) throws -> [SliceOverlay] {
        let display = reportCase.prediction
        if let reference = reportCase.reference, reference.shape != display.shape {
            throw ReportError.invalidCase("\(reportCase.name): reference shape \(reference.shape) differs from prediction shape \(display.shape)")
        }
        let orientation = SliceOrientation.radiological(affine: display.affine)
        let choices = chooseSlices(reference: reportCase.reference, prediction: display, count: max(1, slices))
        var out: [SliceOverlay] = []
        for (modality, volume) in reportCase.images {
            guard let sampler = GridSampler(source: volume, display: display) else {
                throw ReportError.invalidCase("\(reportCase.name): image \(modality) (shape \(volume.shape)) cannot be placed on the prediction's grid (singular affine)")
            }
            let window = intensityWindow(volume)
            for choice in choices {
                let png = renderPanels(sampler: sampler, window: window, reference: reportCase.reference,
                                       prediction: display, k: choice.k, orientation: orientation)
                out.append(SliceOverlay(modality: modality, k: choice.k, reason: choice.reason, orientation: orientation,
                                        window: window, image: png))
            }
        }
        return out
    }

    // MARK: - Slice choice

    struct SliceChoice: Equatable { var k: Int; var reason: String }

    /// `count` slices at (i + 1) / (count + 1) of the k extent of the reference's foreground, else of
    /// the prediction's foreground, else of the whole volume; duplicates removed.
    static func chooseSlices(reference: Volume?, prediction: Volume, count: Int) -> [SliceChoice] {
        let fractions = (0..<count).map { Double($0 + 1) / Double(count + 1) }
        var range: ClosedRange<Int>?
        var source = ""
        if let reference, let r = foregroundExtent(reference) {
            range = r; source = "reference"
        } else if let r = foregroundExtent(prediction) {
            range = r; source = "prediction"
        }
        var out: [SliceChoice] = []
        for f in fractions {
            let k: Int, reason: String
            if let range {
                k = range.lowerBound + Int((f * Double(range.upperBound - range.lowerBound)).rounded())
                reason = "\(Int((f * 100).rounded())) % of the \(source) foreground (k \(range.lowerBound)–\(range.upperBound))"
            } else {
                k = Int((f * Double(prediction.shape[2] - 1)).rounded())
                reason = "no foreground: \(Int((f * 100).rounded())) % of the volume"
            }
            if !out.contains(where: { $0.k == k }) { out.append(SliceChoice(k: k, reason: reason)) }
        }
        return out
    }

    /// First and last k holding a label >= 1.
    static func foregroundExtent(_ labels: Volume) -> ClosedRange<Int>? {
        let plane = labels.shape[0] * labels.shape[1]
        guard plane > 0 else { return nil }
        var lo = Int.max, hi = Int.min
        labels.voxels.withUnsafeBufferPointer { v in
            for k in 0..<labels.shape[2] {
                let base = k * plane
                for n in 0..<plane where v[base + n] >= 0.5 {
                    lo = min(lo, k); hi = max(hi, k)
                    break
                }
            }
        }
        return lo <= hi ? lo...hi : nil
    }

    /// The distinct labels (rounded, >= 0) present in a label volume.
    static func distinctLabels(_ labels: Volume) -> [Int] {
        var seen = [Bool](repeating: false, count: 256)
        var others = Set<Int>()
        labels.voxels.withUnsafeBufferPointer { v in
            for value in v {
                let l = label(value)
                if l < 256 { seen[l] = true } else { others.insert(l) }
            }
        }
        return (0..<256).filter { seen[$0] } + others.sorted()
    }

    // MARK: - Intensities

    /// The 1st and 99th percentiles (linear interpolation, as numpy) of the finite voxels; at most
    /// about 2^20 voxels are looked at (a regular stride). `high > low` always.
    static func intensityWindow(_ volume: Volume) -> (low: Float, high: Float) {
        let stride = max(1, volume.count / (1 << 20))
        var values: [Float] = []
        values.reserveCapacity(volume.count / stride + 1)
        var index = 0
        while index < volume.count {
            let v = volume.voxels[index]
            if v.isFinite { values.append(v) }
            index += stride
        }
        guard !values.isEmpty else { return (0, 1) }
        values.sort()
        func percentile(_ q: Double) -> Float {
            let position = q / 100 * Double(values.count - 1)
            let lower = Int(position.rounded(.down)), upper = min(values.count - 1, lower + 1)
            let t = Float(position - Double(lower))
            return values[lower] + (values[upper] - values[lower]) * t
        }
        var low = percentile(1), high = percentile(99)
        if !(high > low) {
            low = values.first!; high = values.last!
            if !(high > low) { high = low + 1 }
        }
        return (low, high)
    }

    // MARK: - Resampling

    /// Reads a volume at the voxels of the display grid: directly when both grids match, else
    /// through the affines (display voxel -> world -> source voxel).
    struct GridSampler {
        let source: Volume
        let direct: Bool
        let map: [Double]  // 3x4 row-major: display voxel -> source voxel

        init?(source: Volume, display: Volume) {
            self.source = source
            let same = source.shape == display.shape && zip(source.affine.m, display.affine.m).allSatisfy { abs($0 - $1) < 1e-3 }
            if same {
                direct = true
                map = []
            } else {
                guard let inverse = source.affine.inverse() else { return nil }
                let m = inverse * display.affine
                direct = false
                map = (0..<3).flatMap { r in (0..<4).map { c in m[r, c] } }
            }
        }

        /// Trilinear value at display voxel (i, j, k); NaN outside the source.
        func value(_ i: Int, _ j: Int, _ k: Int) -> Float {
            if direct { return source[i, j, k] }
            let n = source.shape
            var base = (0, 0, 0), next = (0, 0, 0), t = (0.0, 0.0, 0.0)
            for a in 0..<3 {
                let p = map[a * 4] * Double(i) + map[a * 4 + 1] * Double(j) + map[a * 4 + 2] * Double(k) + map[a * 4 + 3]
                if !(p >= -0.5 && p <= Double(n[a]) - 0.5) { return .nan }
                let c = min(max(p, 0), Double(n[a] - 1))
                let b = min(Int(c.rounded(.down)), n[a] - 1)
                let f = c - Double(b), nb = min(b + 1, n[a] - 1)
                switch a {
                case 0: base.0 = b; next.0 = nb; t.0 = f
                case 1: base.1 = b; next.1 = nb; t.1 = f
                default: base.2 = b; next.2 = nb; t.2 = f
                }
            }
            var sum = 0.0
            for corner in 0..<8 {
                let di = corner & 1 == 1, dj = (corner >> 1) & 1 == 1, dk = (corner >> 2) & 1 == 1
                let w = (di ? t.0 : 1 - t.0) * (dj ? t.1 : 1 - t.1) * (dk ? t.2 : 1 - t.2)
                if w == 0 { continue }
                sum += w * Double(source[di ? next.0 : base.0, dj ? next.1 : base.1, dk ? next.2 : base.2])
            }
            return Float(sum)
        }
    }

    // MARK: - Drawing

    /// Output panel size in pixels: the longer physical side becomes 256 px (or the voxel count,
    /// up to 512, for larger grids), the other side follows the in-plane spacing.
    static func panelSize(columns: Int, rows: Int, spacingH: Double, spacingV: Double) -> (width: Int, height: Int) {
        let sh = spacingH.isFinite && spacingH > 0 ? spacingH : 1
        let sv = spacingV.isFinite && spacingV > 0 ? spacingV : 1
        let widthMM = Double(columns) * sh, heightMM = Double(rows) * sv
        let target = Double(min(512, max(256, max(columns, rows))))
        let scale = target / max(widthMM, heightMM)
        return (max(1, Int((widthMM * scale).rounded())), max(1, Int((heightMM * scale).rounded())))
    }

    static func renderPanels(sampler: GridSampler, window: (low: Float, high: Float), reference: Volume?,
                             prediction: Volume, k: Int, orientation: SliceOrientation) -> PNGImage {
        let shape = prediction.shape
        let (columns, rows) = orientation.screenSize(shape: shape)
        // Slice on the screen grid (voxel resolution).
        var gray = [UInt8](repeating: 0, count: columns * rows)
        var ref = [Int](repeating: 0, count: columns * rows)
        var pred = [Int](repeating: 0, count: columns * rows)
        let scale = 255 / (window.high - window.low)
        for r in 0..<rows {
            for c in 0..<columns {
                let (i, j) = orientation.voxel(column: c, row: r, shape: shape)
                let v = sampler.value(i, j, k)
                let g = v.isFinite ? min(max((v - window.low) * scale, 0), 255) : 0
                gray[r * columns + c] = UInt8(g.rounded())
                if let reference { ref[r * columns + c] = label(reference[i, j, k]) }
                pred[r * columns + c] = label(prediction[i, j, k])
            }
        }
        // Nearest-neighbour upscaling with the in-plane spacing.
        let size = panelSize(columns: columns, rows: rows,
                             spacingH: prediction.spacing[orientation.horizontalAxis],
                             spacingV: prediction.spacing[orientation.verticalAxis])
        let w = size.width, h = size.height
        let sourceColumn = (0..<w).map { min(columns - 1, Int((Double($0) + 0.5) * Double(columns) / Double(w))) }
        let sourceRow = (0..<h).map { min(rows - 1, Int((Double($0) + 0.5) * Double(rows) / Double(h))) }
        var predUp = [Int](repeating: 0, count: w * h)
        for y in 0..<h { for x in 0..<w { predUp[y * w + x] = pred[sourceRow[y] * columns + sourceColumn[x]] } }

        let totalWidth = 2 * w + panelGap
        var pixels = [UInt8](repeating: 255, count: totalWidth * h * 3)
        let radius = max(w, h) >= 200 ? 2 : 1
        for y in 0..<h {
            for x in 0..<w {
                let s = sourceRow[y] * columns + sourceColumn[x]
                let g = Double(gray[s])
                // Left panel: the image alone.
                let leftOffset = (y * totalWidth + x) * 3
                pixels[leftOffset] = gray[s]; pixels[leftOffset + 1] = gray[s]; pixels[leftOffset + 2] = gray[s]
                // Right panel: reference fill, prediction outline.
                var rgb = (g, g, g)
                let refLabel = ref[s]
                if refLabel > 0 {
                    let (cr, cg, cb) = ReportPalette.rgb(forClass: refLabel)
                    let a = fillAlpha
                    rgb = ((1 - a) * g + a * Double(cr), (1 - a) * g + a * Double(cg), (1 - a) * g + a * Double(cb))
                }
                let p = predUp[y * w + x]
                if p > 0 && isContour(predUp, w, h, x, y, radius) {
                    let (cr, cg, cb) = ReportPalette.rgb(forClass: p)
                    rgb = (Double(cr), Double(cg), Double(cb))
                }
                let rightOffset = (y * totalWidth + w + panelGap + x) * 3
                pixels[rightOffset] = UInt8(min(255, rgb.0.rounded()))
                pixels[rightOffset + 1] = UInt8(min(255, rgb.1.rounded()))
                pixels[rightOffset + 2] = UInt8(min(255, rgb.2.rounded()))
            }
        }
        if orientation.plane != "slice" {
            for panelX in [0, w + panelGap] {
                drawLetters(orientation, panelX: panelX, panelWidth: w, panelHeight: h, into: &pixels, rowWidth: totalWidth)
            }
        }
        return PNGImage(width: totalWidth, height: h, channels: 3, pixels: pixels)
    }

    @inline(__always) static func label(_ value: Float) -> Int {
        value.isFinite ? max(0, Int(value.rounded())) : 0
    }

    /// A pixel of label `p` with a pixel of another label within `radius` (Chebyshev) inside the panel.
    @inline(__always) static func isContour(_ labels: [Int], _ w: Int, _ h: Int, _ x: Int, _ y: Int, _ radius: Int) -> Bool {
        let p = labels[y * w + x]
        for dy in -radius...radius {
            let yy = y + dy
            if yy < 0 || yy >= h { continue }
            for dx in -radius...radius {
                let xx = x + dx
                if xx < 0 || xx >= w { continue }
                if labels[yy * w + xx] != p { return true }
            }
        }
        return false
    }

    // MARK: - Orientation letters (a 5x7 bitmap font of the six letters needed)

    static let glyphs: [Character: [String]] = [
        "A": [".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"],
        "P": ["####.", "#...#", "#...#", "####.", "#....", "#....", "#...."],
        "R": ["####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"],
        "L": ["#....", "#....", "#....", "#....", "#....", "#....", "#####"],
        "S": [".####", "#....", "#....", ".###.", "....#", "....#", "####."],
        "I": [".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."],
    ]

    static func drawLetters(_ o: SliceOrientation, panelX: Int, panelWidth w: Int, panelHeight h: Int,
                            into pixels: inout [UInt8], rowWidth: Int) {
        let scale = max(w, h) >= 200 ? 2 : 1
        let gw = 5 * scale, gh = 7 * scale, margin = 3 * scale
        let places: [(String, Int, Int)] = [
            (o.left, margin, (h - gh) / 2),
            (o.right, w - gw - margin, (h - gh) / 2),
            (o.top, (w - gw) / 2, margin),
            (o.bottom, (w - gw) / 2, h - gh - margin),
        ]
        for (text, x0, y0) in places {
            guard let ch = text.first, let rows = glyphs[ch] else { continue }
            for pass in 0..<2 {  // dark outline first, then the letter
                for (gy, line) in rows.enumerated() {
                    for (gx, cell) in line.enumerated() where cell == "#" {
                        for sy in 0..<scale {
                            for sx in 0..<scale {
                                let offsets = pass == 0 ? [(-1, 0), (1, 0), (0, -1), (0, 1), (1, 1)] : [(0, 0)]
                                for (ox, oy) in offsets {
                                    let x = x0 + gx * scale + sx + ox, y = y0 + gy * scale + sy + oy
                                    guard x >= 0, x < w, y >= 0, y < h else { continue }
                                    let offset = (y * rowWidth + panelX + x) * 3
                                    let color: (UInt8, UInt8, UInt8) = pass == 0 ? (0, 0, 0) : (255, 255, 255)
                                    pixels[offset] = color.0; pixels[offset + 1] = color.1; pixels[offset + 2] = color.2
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
