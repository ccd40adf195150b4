import Foundation
import Volumes

/// One case to show as slice overlays in the report.
///
/// `prediction` defines the display grid. `reference`, when given, must have the same shape (the
/// label maps of one case share a grid). Images may lie on other grids: they are then resampled onto
/// the prediction's grid through their affines (trilinear, world coordinates).
/// Label volumes hold class labels 0...K as Float (0 = background).
public struct ReportCase {
    public var name: String
    /// One image per modality, in display order.
    public var images: [(modality: String, volume: Volume)]
    public var reference: Volume?
    public var prediction: Volume

    public init(name: String, images: [(modality: String, volume: Volume)], reference: Volume?, prediction: Volume) {
        self.name = name
        self.images = images
        self.reference = reference
        self.prediction = prediction
    }
}
