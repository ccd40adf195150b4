import Foundation
import Torch

extension RunExport {
    /// Writes a MONAI bundle folder (see `MONAIBundleWriter`).
    public func writeMONAIBundle(to folder: URL) throws {
        throw TorchError("monai-bundle: not written yet")
    }
}
