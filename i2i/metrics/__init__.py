"""Evaluation metrics: FID, KID, IS (Inception features), PSNR, SSIM, LPIPS, segmentation accuracy.

``MetricSuite`` accumulates any registered metrics over batches of images in
[-1, 1]; the functions below are the plain formulas on arrays.
"""
from .fid import (feature_statistics, fid_from_features, frechet_distance, inception_score, kid,
                  mmd2_unbiased, polynomial_kernel, trace_sqrt_product)
from .image import psnr, psnr_per_image, quantize, rgb_to_y, ssim, ssim_per_image
from .inception import InceptionFeatures, find_inception_weights, load_inception
from .segmentation import (colors_to_labels, confusion_matrix, read_palette, scores_from_confusion,
                           segmentation_scores)
from .accumulators import Batch
from .lpips import LPIPS
from .suite import MetricSuite, check_metric_names, higher_is_better

__all__ = [
    "MetricSuite", "Batch", "check_metric_names", "higher_is_better",
    "frechet_distance", "feature_statistics", "fid_from_features", "trace_sqrt_product",
    "kid", "mmd2_unbiased", "polynomial_kernel", "inception_score",
    "psnr", "psnr_per_image", "ssim", "ssim_per_image", "rgb_to_y", "quantize",
    "read_palette", "colors_to_labels", "confusion_matrix", "scores_from_confusion", "segmentation_scores",
    "InceptionFeatures", "find_inception_weights", "load_inception", "LPIPS",
]
