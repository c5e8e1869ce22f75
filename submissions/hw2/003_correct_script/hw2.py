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
# Backpropagation through time multiplies the Jacobians $\partial h_t / \partial h_{t-1} = \operatorname{diag}(\tanh'(a_t)) W$ of every step. With $|\tanh'| \le 1$ and the largest singular value of $W$ below 1, the product shrinks exponentially with the number of steps (vanishing gradients: distant inputs get no learning signal); with the largest singular value above 1 it can grow exponentially (exploding gradients).

# %% [markdown]
# ### 1.2 梯度裁剪是如何工作的? / How does gradient clipping work?

# %% [markdown]
# **答 / Answer:**
#
# After the backward pass and before the optimizer step, compute the global L2 norm of all gradients. If it is larger than a threshold $c$, multiply every gradient by $c / \|g\|$, so the norm becomes $c$ and the direction is kept. This bounds the update size and prevents exploding gradients; it does nothing for vanishing gradients.

# %% [markdown]
# ### 1.3 为什么 LSTM 能缓解梯度消失?它能彻底解决这个问题吗? / Why does an LSTM mitigate vanishing gradients, and does it solve the problem?

# %% [markdown]
# **答 / Answer:**
#
# The cell state is updated additively, $c_t = f_t \odot c_{t-1} + i_t \odot \tilde c_t$, so the gradient along it is multiplied by the forget gate at each step instead of by $W$ and a squashing derivative. When the forget gate is close to 1 the gradient flows over many steps almost unchanged, and the gates are learned, so the network decides what to remember.
#
# It does not fully solve the problem: forget gates below 1 still make the gradient decay over long spans, and gradients can still explode.

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
Q, K, V = X @ W_Q, X @ W_K, X @ W_V

# %%
#todo 计算注意力得分 / compute the attention scores
d = W_Q.shape[-1]
score = (Q @ K.T) * d ** -0.5
attention = score.softmax(dim=-1)

#todo 加权和计算最终output / weighted sum: the final output
output = attention @ V
print(output)

# %% [markdown]
# ### 2.2 与上面的代码相比,多头自注意力有什么不同? / Compared with the code above, what does multi-head self-attention change?

# %% [markdown]
# **答 / Answer:**
#
# Instead of one attention with one set of $W_Q, W_K, W_V$, the projections are split into $h$ heads (contiguous chunks of size $d_{model}/h$); each head computes its own scaled dot-product attention in its subspace (scaled by $\sqrt{d_{head}}$), and the head outputs are concatenated and projected by $W_O$. Each head can capture a different kind of relation.

# %% [markdown]
# ### 2.3 Transformer 的编码器和解码器有什么区别? / What is the difference between the Transformer's encoder and decoder?

# %% [markdown]
# **答 / Answer:**
#
# The encoder uses unmasked self-attention over the whole input. The decoder uses masked (causal) self-attention so position $i$ only sees positions up to $i$, plus a cross-attention layer whose keys and values come from the encoder output. The encoder builds representations of the input; the decoder generates the output autoregressively.

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
    """Scaled dot-product attention."""
    #todo 计算缩放点积注意力 / compute scaled dot-product attention
    s = torch.matmul(Q, K.transpose(-1, -2)) * Q.shape[-1] ** -0.5
    if mask is not None:
        s = torch.where(mask, s, float("-inf"))
    w = s.softmax(dim=-1)
    return torch.matmul(w, V), w


# %%
def causal_mask(n):
    """Causal mask."""
    #todo 构造因果掩码 / build the causal mask
    idx = torch.arange(n)
    return idx[:, None] >= idx[None, :]


# %%
def multi_head_attention(X, W_Q, W_K, W_V, W_O, num_heads, causal=False):
    """Multi-head self-attention."""
    #todo 实现多头自注意力 / implement multi-head self-attention
    # (n, d_model) -> (num_heads, n, d_head): contiguous chunks of the last dim
    q = torch.stack((X @ W_Q).chunk(num_heads, dim=-1))
    k = torch.stack((X @ W_K).chunk(num_heads, dim=-1))
    v = torch.stack((X @ W_V).chunk(num_heads, dim=-1))
    mask = causal_mask(X.shape[0]) if causal else None
    heads, attn = scaled_dot_product_attention(q, k, v, mask)
    return torch.cat(heads.unbind(0), dim=-1) @ W_O, attn


# %% [markdown]
# ## 三、目标检测 / Section 3: Object detection

# %% [markdown]
# ### 3.1 R-CNN 的主要步骤是什么? / What are the main steps of R-CNN?

# %% [markdown]
# **答 / Answer:**
#
# Selective search gives about 2000 region proposals; each is warped to a fixed size; a CNN (pretrained on ImageNet, fine-tuned) extracts a feature vector per region; class-specific linear SVMs classify the features and a linear bounding-box regressor predicts $(d_x, d_y, d_w, d_h)$ to refine each box; NMS removes duplicates.

# %% [markdown]
# ### 3.2 Fast R-CNN 的主要改进是什么?它如何避免冗余计算? / What is Fast R-CNN's main improvement, and how does it avoid redundant computation?

# %% [markdown]
# **答 / Answer:**
#
# Fast R-CNN runs the CNN once on the whole image and shares the feature map among all proposals: each proposal is projected onto the feature map and RoI pooling turns it into a fixed-size feature. So overlapping regions are no longer convolved again and again, and classification and box regression are trained jointly in one network.

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
    """Pairwise IoU, (N, M)."""
    #todo 计算两两 IoU / compute the pairwise IoU
    a = boxes1[:, None, :]   # (N, 1, 4)
    b = boxes2[None, :, :]   # (1, M, 4)
    iw = (torch.min(a[..., 2], b[..., 2]) - torch.max(a[..., 0], b[..., 0])).clamp(min=0)
    ih = (torch.min(a[..., 3], b[..., 3]) - torch.max(a[..., 1], b[..., 1])).clamp(min=0)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / (area_a + area_b - inter)


# %%
def nms(boxes, scores, iou_threshold):
    """Greedy NMS on a precomputed IoU matrix."""
    #todo 实现 NMS / implement NMS
    order = scores.argsort(descending=True)
    iou = box_iou(boxes[order], boxes[order])   # rows/columns in score order
    alive = torch.ones(len(order), dtype=torch.bool)
    for i in range(len(order)):
        if alive[i]:
            alive[i + 1:] &= iou[i, i + 1:] <= iou_threshold
    return order[alive]


# %%
def encode_boxes(proposals, targets):
    """(dx, dy, dw, dh) of targets relative to proposals."""
    #todo 计算回归量 / compute the deltas
    p_wh = proposals[:, 2:] - proposals[:, :2]
    p_ctr = proposals[:, :2] + 0.5 * p_wh
    t_wh = targets[:, 2:] - targets[:, :2]
    t_ctr = targets[:, :2] + 0.5 * t_wh
    return torch.cat([(t_ctr - p_ctr) / p_wh, torch.log(t_wh / p_wh)], dim=1)


# %%
def decode_boxes(proposals, deltas):
    """Inverse of encode_boxes."""
    #todo 由回归量还原框 / decode the boxes
    p_wh = proposals[:, 2:] - proposals[:, :2]
    p_ctr = proposals[:, :2] + 0.5 * p_wh
    ctr = deltas[:, :2] * p_wh + p_ctr
    wh = torch.exp(deltas[:, 2:]) * p_wh
    return torch.cat([ctr - 0.5 * wh, ctr + 0.5 * wh], dim=1)


# %%
def roi_pool(features, rois, output_size, spatial_scale):
    """RoI max pooling with masks, no Python loop over RoIs or bins."""
    #todo 实现 RoI 池化 / implement RoI pooling
    out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else output_size
    _, C, H, W = features.shape
    dt = features.dtype
    xy = rois[:, 1:].to(dt) * spatial_scale
    mag = xy.abs()
    low = torch.floor(mag)
    xy = torch.sign(xy) * (low + (mag - low >= 0.5))       # round half away from zero
    start = xy[:, :2].long()                                # (K, 2): x1, y1
    size = (xy[:, 2:].long() - start + 1).clamp(min=1)      # (K, 2): roi_w, roi_h

    def edges(n_bins, roi_len, offset, limit):
        bin_len = roi_len.to(dt)[:, None] / n_bins                    # (K, 1)
        i = torch.arange(n_bins, dtype=dt)[None, :]                    # (1, n_bins)
        lo = (torch.floor(i * bin_len).long() + offset[:, None]).clamp(0, limit)
        hi = (torch.ceil((i + 1) * bin_len).long() + offset[:, None]).clamp(0, limit)
        cells = torch.arange(limit)
        return (cells >= lo[..., None]) & (cells < hi[..., None])   # (K, n_bins, limit)

    in_col = edges(out_w, size[:, 0], start[:, 0], W)
    in_row = edges(out_h, size[:, 1], start[:, 1], H)
    inside = in_row[:, :, None, :, None] & in_col[:, None, :, None, :]   # (K, out_h, out_w, H, W)
    fm = features[rois[:, 0].long()][:, :, None, None]                     # (K, C, 1, 1, H, W)
    pooled = fm.masked_fill(~inside[:, None], float("-inf")).amax(dim=(-2, -1))
    empty = ~inside.any(dim=-1).any(dim=-1)
    return pooled.masked_fill(empty[:, None], 0.0)
