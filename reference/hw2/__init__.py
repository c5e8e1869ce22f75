"""Reference package for hw2 (作业二): attention, box operations, RoI pooling.

The grader imports this package by path (rubrics/hw2.toml: assignment.reference) and names its
functions as "module.function"; the function items' references are the names exported here.
"""
from .attention import causal_mask, multi_head_attention, scaled_dot_product_attention
from .boxes import box_area, box_iou, decode_boxes, encode_boxes, nms
from .roi_pool import roi_pool

__all__ = ["scaled_dot_product_attention", "causal_mask", "multi_head_attention",
           "box_area", "box_iou", "nms", "encode_boxes", "decode_boxes", "roi_pool"]
