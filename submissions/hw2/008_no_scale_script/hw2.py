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
# 反向传播时梯度要在时间上连乘很多个矩阵(权重矩阵乘激活函数导数)。这些因子小于 1 时乘多了趋于 0,就是梯度消失;大于 1 时越乘越大,就是梯度爆炸。

# %% [markdown]
# ### 1.2 梯度裁剪是如何工作的? / How does gradient clipping work?

# %% [markdown]
# **答 / Answer:**
#
# 给梯度范数设一个上限,超过上限就把整个梯度向量缩放到上限那么长,没超过就不变。

# %% [markdown]
# ### 1.3 为什么 LSTM 能缓解梯度消失?它能彻底解决这个问题吗? / Why does an LSTM mitigate vanishing gradients, and does it solve the problem?

# %% [markdown]
# **答 / Answer:**
#
# LSTM 用门控和细胞状态让信息以相加的方式传递,遗忘门打开时梯度可以沿细胞状态传很远而不明显衰减。但不能彻底解决,序列很长时仍会梯度消失。

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
Q = X @ W_Q
K = X @ W_K
V = X @ W_V

# %%
#todo 计算注意力得分 / compute the attention scores
d = W_Q.shape[-1]
score = Q @ K.T
attention = F.softmax(score, dim=-1)

#todo 加权和计算最终output / weighted sum: the final output
output = attention @ V
print(output)

# %% [markdown]
# ### 2.2 与上面的代码相比,多头自注意力有什么不同? / Compared with the code above, what does multi-head self-attention change?

# %% [markdown]
# **答 / Answer:**
#
# 用多组 Q、K、V 投影(多个头),每个头单独算注意力,最后拼接起来再做一次线性变换 $W_O$。

# %% [markdown]
# ### 2.3 Transformer 的编码器和解码器有什么区别? / What is the difference between the Transformer's encoder and decoder?

# %% [markdown]
# **答 / Answer:**
#
# 解码器的自注意力有掩码,不能看后面的词;解码器还有对编码器输出的交叉注意力。

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
    """缩放点积注意力 / scaled dot-product attention."""
    #todo 计算缩放点积注意力 / compute scaled dot-product attention
    scores = Q @ K.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ V, weights


# %%
def causal_mask(n):
    """因果掩码:形状 (n, n) 的布尔张量,第 i 行第 j 列当 j <= i 时为 True(位置 i 只能看到它自己和之前的位置)。

    Causal mask: a bool tensor of shape (n, n), True at row i, column j when j <= i
    (position i sees itself and the positions before it).
    """
    #todo 构造因果掩码 / build the causal mask
    return torch.tril(torch.ones(n, n, dtype=torch.bool))


# %%
def multi_head_attention(X, W_Q, W_K, W_V, W_O, num_heads, causal=False):
    """多头自注意力 / multi-head self-attention."""
    #todo 实现多头自注意力 / implement multi-head self-attention
    n, d_model = X.shape
    d_head = d_model // num_heads
    Q = (X @ W_Q).reshape(n, num_heads, d_head).transpose(0, 1)
    K = (X @ W_K).reshape(n, num_heads, d_head).transpose(0, 1)
    V = (X @ W_V).reshape(n, num_heads, d_head).transpose(0, 1)
    scores = Q @ K.transpose(-2, -1) / d_head ** 0.5
    if causal:
        scores = scores.masked_fill(~causal_mask(n), float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    out = (weights @ V).transpose(0, 1).reshape(n, d_model)
    return out @ W_O, weights


# %% [markdown]
# ## 三、目标检测 / Section 3: Object detection

# %% [markdown]
# ### 3.1 R-CNN 的主要步骤是什么? / What are the main steps of R-CNN?

# %% [markdown]
# **答 / Answer:**
#
# 提取候选区域 → 缩放到固定大小 → CNN 提特征 → SVM 分类 + 边框回归。

# %% [markdown]
# ### 3.2 Fast R-CNN 的主要改进是什么?它如何避免冗余计算? / What is Fast R-CNN's main improvement, and how does it avoid redundant computation?

# %% [markdown]
# **答 / Answer:**
#
# 整张图只算一次卷积特征,候选框通过 RoI 池化从共享特征图上取特征,避免对重叠区域重复卷积。

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
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    top_left = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])      # (N, M, 2)
    bottom_right = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])  # (N, M, 2)
    wh = (bottom_right - top_left).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - inter
    return inter / union


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
    order = torch.argsort(scores, descending=True)
    ious = box_iou(boxes, boxes)
    suppressed = torch.zeros(len(boxes), dtype=torch.bool)
    keep = []
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= ious[i] > iou_threshold
    return torch.tensor(keep, dtype=torch.int64)


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
    pw = proposals[:, 2] - proposals[:, 0]
    ph = proposals[:, 3] - proposals[:, 1]
    px = proposals[:, 0] + 0.5 * pw
    py = proposals[:, 1] + 0.5 * ph
    gw = targets[:, 2] - targets[:, 0]
    gh = targets[:, 3] - targets[:, 1]
    gx = targets[:, 0] + 0.5 * gw
    gy = targets[:, 1] + 0.5 * gh
    dx = (gx - px) / pw
    dy = (gy - py) / ph
    dw = torch.log(gw / pw)
    dh = torch.log(gh / ph)
    return torch.stack([dx, dy, dw, dh], dim=1)


# %%
def decode_boxes(proposals, deltas):
    """encode_boxes 的逆运算:由候选框和回归量 (dx, dy, dw, dh) 还原框 (x1, y1, x2, y2)。
    proposals、deltas: (N, 4)。返回 (N, 4)。

    The inverse of encode_boxes: boxes (x1, y1, x2, y2) from proposals and deltas (dx, dy, dw, dh).
    proposals, deltas: (N, 4). Returns (N, 4).
    """
    #todo 由回归量还原框 / decode the boxes
    pw = proposals[:, 2] - proposals[:, 0]
    ph = proposals[:, 3] - proposals[:, 1]
    px = proposals[:, 0] + 0.5 * pw
    py = proposals[:, 1] + 0.5 * ph
    dx, dy, dw, dh = deltas.unbind(dim=1)
    cx = px + dx * pw
    cy = py + dy * ph
    w = pw * torch.exp(dw)
    h = ph * torch.exp(dh)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=1)


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
    if isinstance(output_size, int):
        output_size = (output_size, output_size)
    out_h, out_w = output_size
    _, C, H, W = features.shape
    K = rois.shape[0]
    output = features.new_zeros((K, C, out_h, out_w))

    # Scale in the features' dtype, then round halves away from zero (C's round, not Python's).
    scaled = rois[:, 1:].to(features.dtype) * spatial_scale
    whole = torch.trunc(scaled)
    corners = whole + torch.sign(scaled) * ((scaled - whole).abs() >= 0.5)

    for k in range(K):
        b = int(rois[k, 0])
        x1, y1, x2, y2 = (int(v) for v in corners[k].tolist())
        roi_w = max(x2 - x1 + 1, 1)
        roi_h = max(y2 - y1 + 1, 1)
        bin_w = torch.tensor(roi_w, dtype=features.dtype) / out_w
        bin_h = torch.tensor(roi_h, dtype=features.dtype) / out_h
        for i in range(out_h):
            h0 = min(max(int(torch.floor(i * bin_h)) + y1, 0), H)
            h1 = min(max(int(torch.ceil((i + 1) * bin_h)) + y1, 0), H)
            for j in range(out_w):
                w0 = min(max(int(torch.floor(j * bin_w)) + x1, 0), W)
                w1 = min(max(int(torch.ceil((j + 1) * bin_w)) + x1, 0), W)
                if h1 > h0 and w1 > w0:   # an empty bin stays 0
                    output[k, :, i, j] = features[b, :, h0:h1, w0:w1].amax(dim=(-2, -1))
    return output
