// Metrics: segmentation metrics in millimetres (see SPEC.md section 3).
