import ArgumentParser
import Datasets
import Foundation

extension ConversionFormat: ExpressibleByArgument {}
extension DICOMSeriesMode: ExpressibleByArgument {}

/// `concord convert FORMAT SRC --out DST`: public datasets and DICOM series to Concord's layout.
struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a public dataset (AMOS22, MS-CMRSeg 2019, MSD BrainTumour) or DICOM series to a Concord dataset folder.",
        discussion: """
        Formats (SRC laid out as the original distribution):

        amos: imagesTr/amos_0001.nii.gz + labelsTr/, imagesVa/ + labelsVa/, imagesTs/.
        Case ids < 500 are CT (channel 0), >= 500 MR (channel 1): an unpaired dataset
        with channels_present. Tr + Va -> imagesTr/labelsTr, Ts -> imagesUnlabeled.
        Labels 0-15 kept (MR scans are annotated with 0-13 only).

        mscmrseg: patient{N}_C0/_LGE/_T2.nii.gz and ..._manual.nii.gz anywhere below
        SRC. The --reference sequence is channel 0 and its manual mask the label
        (200 -> 1 myocardium, 500 -> 2 LV, 600 -> 3 RV); patients without that mask
        go to imagesUnlabeled. The sequences are not co-registered (the loader
        resamples them onto channel 0 through the affines).

        msd-brain: dataset.json (modality, labels) and 4D imagesTr/BRATS_001.nii.gz
        -> one 3D file per channel, labelsTr copied, imagesTs -> imagesUnlabeled;
        macOS resource forks (._*) skipped.

        dicom: one sub-folder of DICOM files per case (or SRC itself) ->
        imagesUnlabeled through dcm2niix, the NIfTI geometry verified against the
        DICOM headers (within 1e-3 mm).

        Writes DST/conversion.json (the source of every case) and DST/dataset.json
        last, then checks DST as `concord check` does (exit code 1 on errors). DST
        must be empty unless --overwrite.
        """
    )

    @Argument(help: "Source format: \(ConversionFormat.allCases.map(\.rawValue).joined(separator: ", ")).") var format: ConversionFormat
    @Argument(help: "Source folder.") var source: String
    @Option(help: "Destination dataset folder (empty or new).") var out: String
    @Flag(help: "Replace the dataset in a non-empty --out (dataset.json, conversion.json, images*/labels* folders).") var overwrite = false
    @Option(help: "Cases converted at once (each holds its volumes in memory).") var threads: Int = max(1, min(4, ProcessInfo.processInfo.activeProcessorCount))
    @Option(help: "amos: ct, mr or ct,mr (default both); mscmrseg: a subset of C0,LGE,T2 (default all).") var modalities: String?
    @Flag(inversion: .prefixedNo, help: "amos: add the labelled validation cases (imagesVa + labelsVa) to imagesTr.") var includeValidation = true
    @Flag(inversion: .prefixedNo, help: "amos, msd-brain: add imagesTs as unlabelled cases.") var includeTest = true
    @Option(help: "mscmrseg: the sequence (C0, LGE or T2) that is channel 0 and whose manual masks are the labels (default C0).") var reference: String?
    @Option(help: "dicom: channel names, comma-separated (default: the DICOM Modality tag).") var channelNames: String?
    @Option(help: "dicom: several series in one case folder: one (an error), channels (the series are the channels) or cases (one case per series).") var series: DICOMSeriesMode = .one
    @Option(help: "dicom: class names for label values 1, 2, ..., comma-separated (default: foreground).") var labels: String?
    @Option(help: "dicom: the dcm2niix executable (default: found on PATH).") var dcm2niix: String?
    @Flag(help: "Skip the final dataset check.") var noCheck = false

    func run() throws {
        var options = ConversionOptions()
        options.overwrite = overwrite
        options.threads = threads
        options.validate = !noCheck
        options.modalities = modalities.map(Self.list)
        options.includeValidation = includeValidation
        options.includeTest = includeTest
        options.reference = reference
        options.channelNames = channelNames.map(Self.list)
        options.seriesMode = series
        options.labelNames = labels.map(Self.list)
        options.dcm2niix = dcm2niix

        let start = Date()
        // Source and destination problems are thrown as they are (ConversionError, or ConversionFailure
        // listing every bad case); ArgumentParser prints them and exits with 1.
        let summary = try DatasetConverter.convert(format, source: URL(fileURLWithPath: source), output: URL(fileURLWithPath: out),
                                                   options: options) { p in
            FileHandle.standardError.write(Data("convert: case \(p.done)/\(p.total) \(p.caseName)\n".utf8))
        }
        for note in summary.notes { print("note: \(note)") }
        let channels = (try? summary.description.orderedChannelNames()) ?? []
        print(String(format: "wrote %d labelled + %d unlabelled case(s) (channels: %@; %@) to %@ in %.1f s",
                     summary.labeled.count, summary.unlabeled.count, channels.joined(separator: ", "),
                     summary.description.pairing.rawValue, out, Date().timeIntervalSince(start)))
        guard summary.validated else { return }
        let errors = summary.problems.filter { $0.severity == .error }
        for p in summary.problems { print(p.description) }
        print("check \(out): \(errors.count) error(s), \(summary.problems.count - errors.count) warning(s)")
        if !errors.isEmpty { throw ExitCode(1) }
    }

    static func list(_ s: String) -> [String] {
        s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}
