# %% [markdown]
# # 作业二 / Homework 2
#
# 本作业分三部分:一、循环神经网络(简答题);二、注意力机制(补全代码 + 简答题 + 注意力函数);三、目标检测(简答题 + 检测函数)。
#
# - 代码题:在每个 `#todo` 注释下方补全代码。不要修改已给出的变量名、函数名和函数签名;只使用 `torch`(不要使用 `torchvision`)。
# - 简答题:把答案写在对应题目下方的 `**答 / Answer:**` 单元中,中英文均可。
#
# This homework has three sections: 1. recurrent neural networks (written questions); 2. attention (fill in code, written questions, attention functions); 3. object detection (written questions, detection functions).
#
# - Code: fill in the code below each `#todo` comment. Do not rename the given variables or functions or change their signatures; use `torch` only (no `torchvision`).
# - Written questions: write your answer in the `**答 / Answer:**` cell below each question, in Chinese or English.

# %% [markdown]
# ## 一、循环神经网络 / Section 1: Recurrent neural networks

# %% [markdown]
# ### 1.1 为什么 vanilla RNN 容易出现梯度消失或梯度爆炸? / Why does a vanilla RNN suffer from vanishing or exploding gradients?

# %% [markdown]
# **答 / Answer:**
#

# %% [markdown]
# ### 1.2 梯度裁剪是如何工作的? / How does gradient clipping work?

# %% [markdown]
# **答 / Answer:**
#

# %% [markdown]
# ### 1.3 为什么 LSTM 能缓解梯度消失?它能彻底解决这个问题吗? / Why does an LSTM mitigate vanishing gradients, and does it solve the problem?

# %% [markdown]
# **答 / Answer:**
#

# %% [markdown]
# ## 二、注意力机制 / Section 2: Attention

# %% [markdown]
# ### 2.1 补全自注意力的计算代码 / Complete the self-attention code (A 部分 / Part A)
#
# 在下面两个代码单元中补全 `#todo` 处的代码:计算查询、键、值 `Q`、`K`、`V`,注意力得分 `score`(除以 $\sqrt{d}$,$d$ 为 `W_Q` 的输出维度)和注意力权重 `attention`(对每一行做 softmax),最后计算加权和 `output`。
#
# Fill in the code at each `#todo` in the two cells below: the queries, keys and values `Q`, `K`, `V`; the attention scores `score` (divided by $\sqrt{d}$, $d$ being the output dimension of `W_Q`) and the attention weights `attention` (softmax over each row); finally the weighted sum `output`.
#
# $$\operatorname{Attention}(Q, K, V) = \operatorname{softmax}\left(\frac{QK^T}{\sqrt{d}}\right)V$$

# %%
import torch
import torch.nn.functional as F
# 假设输入是一个5个词, 4维的词向量矩阵 / the input: 5 words, each a 4-dimensional word vector
X = torch.tensor([[1.0, 0.0, 1.0, 0.0],
                 [1.0, 2.0, 1.0, 0.0],
                 [0.0, 1.0, 0.0, 1.0],
                 [0.0, 1.0, 0.0, 0.0],
                 [1.0, 0.0, 1.0, 0.0]])
# 初始化查询、键和值的权重矩阵 / initialise the query, key and value weight matrices
W_Q = torch.randn(4, 4)
W_K = torch.randn(4, 4)
W_V = torch.randn(4, 4)
#todo 计算查询、键、值 / compute the queries, keys and values
Q = ...
K = ...
V = ...

# %%
#todo 计算注意力得分 / compute the attention scores
d = ...
score = ...
attention = ...

#todo 加权和计算最终output / weighted sum: the final output
output = ...
print(output)

# %% [markdown]
# ### 2.2 与上面的代码相比,多头自注意力有什么不同? / Compared with the code above, what does multi-head self-attention change?

# %% [markdown]
# **答 / Answer:**
#

# %% [markdown]
# ### 2.3 Transformer 的编码器和解码器有什么区别? / What is the difference between the Transformer's encoder and decoder?

# %% [markdown]
# **答 / Answer:**
#

# %% [markdown]
# ## B 部分:注意力函数 / Part B: attention functions
#
# 实现下面的函数,只用 `torch`。张量形状中的 `...` 表示任意多个批量维度。
#
# Implement the functions below with `torch` only. `...` in a shape stands for any number of batch dimensions.

# %%
import torch
import torch.nn.functional as F


# %%
def scaled_dot_product_attention(Q, K, V, mask=None):
    """缩放点积注意力。
    Q: (..., n_q, d);K: (..., n_k, d);V: (..., n_k, d_v)。
    mask: 可选的布尔张量,可广播到 (..., n_q, n_k);True 表示该查询可以关注该键,False 表示屏蔽。
    得分为 Q K^T / sqrt(d),对最后一维做 softmax。
    返回 (output, weights):output (..., n_q, d_v),weights (..., n_q, n_k)。

    Scaled dot-product attention.
    Q: (..., n_q, d); K: (..., n_k, d); V: (..., n_k, d_v).
    mask: optional bool tensor broadcastable to (..., n_q, n_k); True = the query may attend to the key.
    Scores are Q K^T / sqrt(d), with a softmax over the last dimension.
    Returns (output, weights): output (..., n_q, d_v), weights (..., n_q, n_k).
    """
    #todo 计算缩放点积注意力 / compute scaled dot-product attention
    raise NotImplementedError


# %%
def causal_mask(n):
    """因果掩码:形状 (n, n) 的布尔张量,第 i 行第 j 列当 j <= i 时为 True(位置 i 只能看到它自己和之前的位置)。

    Causal mask: a bool tensor of shape (n, n), True at row i, column j when j <= i
    (position i sees itself and the positions before it).
    """
    #todo 构造因果掩码 / build the causal mask
    raise NotImplementedError


# %%
def multi_head_attention(X, W_Q, W_K, W_V, W_O, num_heads, causal=False):
    """多头自注意力。
    X: (n, d_model);W_Q、W_K、W_V: (d_model, d_model);W_O: (d_model, d_model)。
    先计算 X @ W_Q、X @ W_K、X @ W_V,把最后一维按顺序切成 num_heads 段连续的块(第 h 个头取第
    h*d_head 到 (h+1)*d_head 列,d_head = d_model // num_heads),每个头做缩放点积注意力(按 sqrt(d_head) 缩放;
    causal=True 时使用因果掩码),再把各头的输出按头的顺序拼接,最后乘以 W_O。
    返回 (output, weights):output (n, d_model),weights (num_heads, n, n)。

    Multi-head self-attention.
    X: (n, d_model); W_Q, W_K, W_V: (d_model, d_model); W_O: (d_model, d_model).
    Compute X @ W_Q, X @ W_K, X @ W_V and cut the last dimension into num_heads contiguous chunks
    (head h takes columns h*d_head to (h+1)*d_head, d_head = d_model // num_heads); each head runs
    scaled dot-product attention (scaled by sqrt(d_head); with the causal mask if causal=True); the
    heads' outputs are concatenated in head order and multiplied by W_O.
    Returns (output, weights): output (n, d_model), weights (num_heads, n, n).
    """
    #todo 实现多头自注意力 / implement multi-head self-attention
    raise NotImplementedError


# %% [markdown]
# ## 三、目标检测 / Section 3: Object detection

# %% [markdown]
# ### 3.1 R-CNN 的主要步骤是什么? / What are the main steps of R-CNN?

# %% [markdown]
# **答 / Answer:**
#

# %% [markdown]
# ### 3.2 Fast R-CNN 的主要改进是什么?它如何避免冗余计算? / What is Fast R-CNN's main improvement, and how does it avoid redundant computation?

# %% [markdown]
# **答 / Answer:**
#

# %% [markdown]
# ## C 部分:目标检测函数 / Part C: detection functions
#
# 框的格式为 `(x1, y1, x2, y2)`,宽度为 `x2 - x1`、高度为 `y2 - y1`(不加 1)。只用 `torch`。
#
# Boxes are `(x1, y1, x2, y2)` with width `x2 - x1` and height `y2 - y1` (no +1). Use `torch` only.

# %%
import math
import torch


# %%
def box_iou(boxes1, boxes2):
    """两组框两两之间的交并比。
    boxes1: (N, 4),boxes2: (M, 4)。返回 (N, M),第 i 行第 j 列为 boxes1[i] 与 boxes2[j] 的 IoU。

    Pairwise intersection over union of two sets of boxes.
    boxes1: (N, 4), boxes2: (M, 4). Returns (N, M): entry (i, j) is the IoU of boxes1[i] and boxes2[j].
    """
    #todo 计算两两 IoU / compute the pairwise IoU
    raise NotImplementedError


# %%
def nms(boxes, scores, iou_threshold):
    """非极大值抑制。
    boxes: (N, 4),scores: (N,)。按得分从高到低依次保留框,并删除与已保留的框 IoU 大于 iou_threshold 的框
    (等于阈值的不删除)。返回保留框的下标(int64),按得分从高到低排列。

    Non-maximum suppression.
    boxes: (N, 4), scores: (N,). Go through the boxes by decreasing score, keep a box and drop every
    remaining box whose IoU with it is greater than iou_threshold (equal is kept).
    Returns the kept indices (int64), by decreasing score.
    """
    #todo 实现 NMS / implement NMS
    raise NotImplementedError


# %%
def encode_boxes(proposals, targets):
    """把目标框编码为相对候选框的回归量。
    proposals、targets: (N, 4)。候选框宽 pw = x2 - x1、高 ph = y2 - y1,中心 (px, py);目标框同理 (gx, gy, gw, gh)。
    返回 (N, 4):dx = (gx - px) / pw,dy = (gy - py) / ph,dw = log(gw / pw),dh = log(gh / ph)。

    Encode target boxes as regression deltas relative to the proposals.
    proposals, targets: (N, 4). A proposal has width pw = x2 - x1, height ph = y2 - y1 and centre (px, py);
    likewise (gx, gy, gw, gh) for a target. Returns (N, 4):
    dx = (gx - px) / pw, dy = (gy - py) / ph, dw = log(gw / pw), dh = log(gh / ph).
    """
    #todo 计算回归量 / compute the deltas
    raise NotImplementedError


# %%
def decode_boxes(proposals, deltas):
    """encode_boxes 的逆运算:由候选框和回归量 (dx, dy, dw, dh) 还原框 (x1, y1, x2, y2)。
    proposals、deltas: (N, 4)。返回 (N, 4)。

    The inverse of encode_boxes: boxes (x1, y1, x2, y2) from proposals and deltas (dx, dy, dw, dh).
    proposals, deltas: (N, 4). Returns (N, 4).
    """
    #todo 由回归量还原框 / decode the boxes
    raise NotImplementedError


# %%
def roi_pool(features, rois, output_size, spatial_scale):
    """RoI 最大池化(与 torchvision.ops.roi_pool 的 CPU 实现一致)。
    features: (B, C, H, W);rois: (K, 5),每行 [batch_index, x1, y1, x2, y2](原图坐标);
    output_size: (h, w);spatial_scale: 原图坐标到特征图坐标的缩放比例。返回 (K, C, h, w)。
    规则:坐标乘以 spatial_scale 后四舍五入(.5 远离 0 取整);RoI 宽高为 max(x2 - x1 + 1, 1)、max(y2 - y1 + 1, 1)
    个格子;第 i 个 bin 覆盖 [floor(i * bin), ceil((i + 1) * bin)) 加上 RoI 起点,再截断到特征图范围内;
    每个 bin 取最大值,空的 bin 输出 0。

    RoI max pooling (as torchvision.ops.roi_pool's CPU kernel).
    features: (B, C, H, W); rois: (K, 5), rows [batch_index, x1, y1, x2, y2] in image coordinates;
    output_size: (h, w); spatial_scale: image-to-feature-map scale. Returns (K, C, h, w).
    Rules: corners are multiplied by spatial_scale and rounded (halves away from zero); the RoI spans
    max(x2 - x1 + 1, 1) by max(y2 - y1 + 1, 1) cells; bin i covers [floor(i * bin), ceil((i + 1) * bin))
    offset by the RoI's start, then clipped to the feature map; each bin takes the maximum, an empty bin is 0.
    """
    #todo 实现 RoI 池化 / implement RoI pooling
    raise NotImplementedError
