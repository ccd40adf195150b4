// swift-tools-version:6.1
// Concord: semi-supervised multimodal 3D medical image segmentation on libtorch.
//
// Build variables (environment):
//   LIBTORCH=/path      use the libtorch under /path (include/ and lib/), e.g. the one inside
//                       PyPI's torch wheel (site-packages/torch) for CUDA machines. Default: Debian's
//                       libtorch-dev under /usr.
//   LIBTORCH_CXX=c++17  C++ standard for the shim (c++17 for Debian's 1.13; newer wheels want c++20).
// CUDA is never linked: the shim opens libtorch_cuda.so at start when it lies next to the
// libtorch_cpu.so the process loaded (Sources/CTorch/device.cpp), so one binary serves CPU-only and
// GPU machines, and Debian's CPU libtorch needs no CUDA library.
import PackageDescription
import Foundation

let env = ProcessInfo.processInfo.environment
let libtorch = env["LIBTORCH"].flatMap { $0.isEmpty ? nil : $0 }
let cxxStd = env["LIBTORCH_CXX"] ?? (libtorch == nil ? "c++17" : "c++20")

var torchCxxFlags: [String] = ["-std=\(cxxStd)", "-O2", "-Wno-deprecated-declarations"]
var torchLinkFlags: [String] = []
var torchLibs: [LinkerSetting] = [.linkedLibrary("torch_cpu"), .linkedLibrary("c10")]
if let root = libtorch {
    torchCxxFlags += ["-I\(root)/include", "-I\(root)/include/torch/csrc/api/include"]
    torchLinkFlags += ["-L\(root)/lib", "-Xlinker", "-rpath", "-Xlinker", "\(root)/lib"]
    // A PyPI wheel's libtorch_cpu needs the CUDA runtime and CUPTI (libcudart, libcupti) even on a
    // CPU; they come from the nvidia wheels installed beside torch/ (site-packages/nvidia/cu13/lib),
    // which libtorch finds through its own RPATH at run time. The linker is told where they are.
    for cudaLib in ["\(root)/../nvidia/cu13/lib", "\(root)/../nvidia/cuda_runtime/lib", "\(root)/../nvidia/cuda_cupti/lib"]
    where FileManager.default.fileExists(atPath: cudaLib) {
        torchLinkFlags += ["-Xlinker", "-rpath-link", "-Xlinker", cudaLib]
    }
    // PyPI wheels before 2.7 use the old C++ ABI.
    if let abi = env["LIBTORCH_CXX11_ABI"] { torchCxxFlags += ["-D_GLIBCXX_USE_CXX11_ABI=\(abi)"] }
}

// Debian's libtorch-dev lacks one header that c10d's reducer.hpp includes; Sources/CTorch/debian-headers
// declares the two names it needs (see the file). PyPI's wheels ship the real one.
var ctorchCxxSettings: [CXXSetting] = [.unsafeFlags(torchCxxFlags)]
if libtorch == nil { ctorchCxxSettings.append(.headerSearchPath("debian-headers")) }

let package = Package(
    name: "Concord",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "concord", targets: ["concord"]),
        .library(name: "Essentials", targets: ["Essentials"]),
        .library(name: "Torch", targets: ["Torch"]),
        .library(name: "Volumes", targets: ["Volumes"]),
        .library(name: "Datasets", targets: ["Datasets"]),
        .library(name: "Metrics", targets: ["Metrics"]),
        .library(name: "Segmentation", targets: ["Segmentation"]),
        .library(name: "Reports", targets: ["Reports"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // The only C++ in Concord: a C ABI over libtorch; every entry point catches every exception.
        .target(
            name: "CTorch",
            cxxSettings: ctorchCxxSettings,
            linkerSettings: torchLibs + [.unsafeFlags(torchLinkFlags)]
        ),
        // Shared utilities without libtorch: atomic file writes, the parallel loop/map, the keyed
        // seeded generator.
        .target(name: "Essentials"),
        .target(name: "Torch", dependencies: ["CTorch", "Essentials"]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "CDeflate", path: "Sources/CDeflate"),
        .target(name: "Volumes", dependencies: ["CZlib", "CDeflate", "Torch", "Essentials"]),
        .target(name: "Metrics", dependencies: ["Essentials"]),
        .target(name: "Datasets", dependencies: ["Volumes", "Essentials"]),
        .target(
            name: "Segmentation",
            dependencies: ["Torch", "Volumes", "Datasets", "Metrics", "Essentials", .product(name: "Yams", package: "Yams")]
        ),
        // The HTML report: charts, slice overlays, PNG encoding (nothing below depends on it).
        .target(name: "Reports", dependencies: ["Segmentation", "Datasets", "Volumes", "Metrics", "Essentials", "CZlib"]),
        .executableTarget(
            name: "concord",
            dependencies: [
                "Reports", "Segmentation", "Datasets", "Volumes", "Metrics", "Torch", "Essentials",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .testTarget(name: "EssentialsTests", dependencies: ["Essentials"]),
        .testTarget(name: "TorchTests", dependencies: ["Torch"], resources: [.copy("Fixtures")]),
        .testTarget(name: "VolumesTests", dependencies: ["Volumes", "Essentials"], resources: [.copy("Fixtures")]),
        .testTarget(name: "MetricsTests", dependencies: ["Metrics"], resources: [.copy("Fixtures")]),
        .testTarget(name: "DatasetsTests", dependencies: ["Datasets", "Volumes", "Essentials"]),
        .testTarget(name: "SegmentationTests", dependencies: ["Segmentation", "Reports", "Datasets", "Volumes", "Metrics", "Torch", "Essentials"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "Segmentation", "Volumes", "CZlib"]),
    ],
    swiftLanguageModes: [.v5]
)
