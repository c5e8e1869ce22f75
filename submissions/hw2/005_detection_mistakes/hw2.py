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
Q = X @ W_Q
K = X @ W_K
V = X @ W_V

# %%
#todo 计算注意力得分 / compute the attention scores
d = W_Q.shape[-1]
score = Q @ K.T / (d ** 0.5)
attention = F.softmax(score, dim=-1)

#todo 加权和计算最终output / weighted sum: the final output
output = attention @ V
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
    d = Q.shape[-1]
    scores = Q @ K.transpose(-2, -1) / (d ** 0.5)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    output = weights @ V
    return output, weights


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
    n = X.shape[0]

    def split_heads(M):
        # (n, num_heads * d_head) -> (num_heads, n, d_head)
        return M.reshape(n, num_heads, -1).transpose(0, 1)

    Q = split_heads(X @ W_Q)
    K = split_heads(X @ W_K)
    V = split_heads(X @ W_V)
    mask = causal_mask(n) if causal else None
    heads, weights = scaled_dot_product_attention(Q, K, V, mask)
    # (num_heads, n, d_head) -> (n, num_heads * d_head)
    concat = heads.transpose(0, 1).reshape(n, -1)
    return concat @ W_O, weights


# %% [markdown]
# ## 三、目标检测 / Section 3: Object detection

# %% [markdown]
# ### 3.1 R-CNN 的主要步骤是什么? / What are the main steps of R-CNN?

# %% [markdown]
# **答 / Answer:**
#
# Region proposals by selective search (~2k per image), warp every proposal to 227x227, run a CNN on each warped region to get features, classify with per-class SVMs and refine the box with a bounding-box regressor predicting (dx, dy, dw, dh).

# %% [markdown]
# ### 3.2 Fast R-CNN 的主要改进是什么?它如何避免冗余计算? / What is Fast R-CNN's main improvement, and how does it avoid redundant computation?

# %% [markdown]
# **答 / Answer:**
#
# It computes the convolutional feature map once for the whole image and pools each proposal from that shared map with RoI pooling, instead of running the CNN on each of the ~2000 overlapping crops.

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
    """Pairwise IoU."""
    #todo 计算两两 IoU / compute the pairwise IoU
    area1 = (boxes1[:, 2] - boxes1[:, 0] + 1) * (boxes1[:, 3] - boxes1[:, 1] + 1)
    area2 = (boxes2[:, 2] - boxes2[:, 0] + 1) * (boxes2[:, 3] - boxes2[:, 1] + 1)
    lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = (rb - lt + 1).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area1[:, None] + area2[None, :] - inter)


# %%
def nms(boxes, scores, iou_threshold):
    """Greedy NMS."""
    #todo 实现 NMS / implement NMS
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    order = scores.argsort(descending=True)
    keep = []
    while order.numel() > 0:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        xx1 = torch.maximum(x1[i], x1[rest])
        yy1 = torch.maximum(y1[i], y1[rest])
        xx2 = torch.minimum(x2[i], x2[rest])
        yy2 = torch.minimum(y2[i], y2[rest])
        inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
        iou = inter / (areas[i] + areas[rest] - inter)
        order = rest[~(iou >= iou_threshold)]
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
    dw = torch.log(pw / gw)
    dh = torch.log(ph / gh)
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
    """RoI max pooling."""
    #todo 实现 RoI 池化 / implement RoI pooling
    if isinstance(output_size, int):
        output_size = (output_size, output_size)
    out_h, out_w = output_size
    _, C, H, W = features.shape
    output = features.new_zeros((rois.shape[0], C, out_h, out_w))
    for k in range(rois.shape[0]):
        b = int(rois[k, 0])
        x1, y1, x2, y2 = [round(v) for v in (rois[k, 1:].to(features.dtype) * spatial_scale).tolist()]
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
                if h1 > h0 and w1 > w0:
                    output[k, :, i, j] = features[b, :, h0:h1, w0:w1].amax(dim=(-2, -1))
    return output
