# %% [markdown]
# # 作业一 / Homework 1
#
# A student's answers, written as a plain script in explicit loops (no vectorised gate slicing).

# %% [markdown]
# ## 一、梯度消失、梯度裁剪与 LSTM / Section 1: Vanishing gradients, clipping and LSTMs

# %% [markdown]
# ### 1.1 为什么 vanilla RNN 容易出现梯度消失或梯度爆炸? / Why does a vanilla RNN suffer from vanishing or exploding gradients?

# %% [markdown]
# **答 / Answer:**
#
# Backpropagation through time multiplies the Jacobians of all the steps, dh_t/dh_{t-1} = diag(tanh') W_hh. The same matrix W_hh appears again and again, and tanh' <= 1 (close to 0 when the unit saturates). If the largest singular value of W_hh is below 1 the product shrinks exponentially with the distance, so the gradient from far-away steps vanishes and long-range dependencies are not learned; if it is above 1 the product can blow up (exploding gradients). The J of Section 2 is such a product over 5 steps.

# %% [markdown]
# ### 1.2 梯度裁剪是如何工作的?它解决的是梯度消失还是梯度爆炸? / How does gradient clipping work, and does it address vanishing or exploding gradients?

# %% [markdown]
# **答 / Answer:**
#
# After backward, compute the global norm of all the gradients; if it is larger than a threshold, rescale every gradient by threshold / norm so the norm equals the threshold, keeping the same direction. It only helps with exploding gradients; vanishing gradients are not scaled up.

# %% [markdown]
# ### 1.3 为什么 LSTM 能缓解梯度消失?它能彻底解决这个问题吗? / Why does an LSTM mitigate vanishing gradients, and does it solve the problem?

# %% [markdown]
# **答 / Answer:**
#
# The cell state is updated additively, c_t = f_t * c_{t-1} + i_t * g_t, so along the cell state the gradient is multiplied by the forget gate only, not by W and tanh' at every step: with f close to 1 there is a gradient highway through time. It does not fully solve the problem: when the forget gate is below 1 the gradient still decays, and over very long sequences it can still vanish.

# %% [markdown]
# ## 二、手动展开 RNN / Section 2: Unrolling an RNN by hand

# %%
import torch
X = torch.tensor([[1.0, 0.0, 1.0, 0.0],
                  [1.0, 2.0, 1.0, 0.0],
                  [0.0, 1.0, 0.0, 1.0],
                  [0.0, 1.0, 0.0, 0.0],
                  [1.0, 0.0, 1.0, 0.0]])
h0 = torch.zeros(4)  # 初始隐藏状态 / the initial hidden state
W_xh = torch.randn(4, 4) * 0.5
W_hh = torch.randn(4, 4) * 0.5
b_h = torch.randn(4) * 0.1
#todo 计算每一步的输入项 XW[t] = W_xh x_t + b_h,一次算出全部 5 步 / the input term XW[t] = W_xh x_t + b_h of every step, all 5 at once
XW = torch.zeros(5, 4)
for t in range(5):
    for i in range(4):
        total = b_h[i]
        for k in range(4):
            total = total + W_xh[i, k] * X[t, k]
        XW[t, i] = total

# %%
#todo 从 h0 开始逐步展开 RNN / unroll the RNN from h0
H = torch.zeros(5, 4)
h = h0.clone()
for t in range(5):
    new_h = torch.zeros(4)
    for i in range(4):
        a = XW[t, i]
        for k in range(4):
            a = a + W_hh[i, k] * h[k]
        new_h[i] = torch.tanh(a)
    H[t] = new_h
    h = new_h
print(H)

# %%
#todo 雅可比矩阵 J = ∂h_5/∂h_0 / the Jacobian J = dh_5/dh_0
J = torch.eye(4)
for t in range(5):
    step = torch.zeros(4, 4)
    for i in range(4):
        for j in range(4):
            step[i, j] = (1 - H[t, i] ** 2) * W_hh[i, j]
    J = step @ J
print(J)

# %% [markdown]
# ## 三、循环单元 / Section 3: Recurrent cells

# %%
import math
import torch


def sigmoid(v):
    return 1 / (1 + torch.exp(-v))


# %%
def rnn_cell(x, h, W_xh, W_hh, b_h):
    #todo 实现 RNN 单元 / implement the RNN cell
    B, H = h.shape
    out = torch.zeros(B, H, dtype=x.dtype)
    for b in range(B):
        for j in range(H):
            a = b_h[j] + (W_xh[j] * x[b]).sum() + (W_hh[j] * h[b]).sum()
            out[b, j] = torch.tanh(a)
    return out


# %%
def lstm_cell(x, state, W_ih, W_hh, b_ih, b_hh):
    #todo 实现 LSTM 单元 / implement the LSTM cell
    h, c = state
    B, H = h.shape
    h_next = torch.zeros(B, H, dtype=x.dtype)
    c_next = torch.zeros(B, H, dtype=x.dtype)
    for b in range(B):
        gates = []
        for k in range(4):                      # i, f, g, o
            rows = slice(k * H, (k + 1) * H)
            gates.append(W_ih[rows] @ x[b] + b_ih[rows] + W_hh[rows] @ h[b] + b_hh[rows])
        i, f, g, o = sigmoid(gates[0]), sigmoid(gates[1]), torch.tanh(gates[2]), sigmoid(gates[3])
        c_next[b] = f * c[b] + i * g
        h_next[b] = o * torch.tanh(c_next[b])
    return h_next, c_next


# %%
def gru_cell(x, h, W_ih, W_hh, b_ih, b_hh):
    #todo 实现 GRU 单元 / implement the GRU cell
    B, H = h.shape
    out = torch.zeros(B, H, dtype=x.dtype)
    for b in range(B):
        gi = [W_ih[k * H:(k + 1) * H] @ x[b] + b_ih[k * H:(k + 1) * H] for k in range(3)]
        gh = [W_hh[k * H:(k + 1) * H] @ h[b] + b_hh[k * H:(k + 1) * H] for k in range(3)]
        r = sigmoid(gi[0] + gh[0])
        z = sigmoid(gi[1] + gh[1])
        n = torch.tanh(gi[2] + r * gh[2])
        out[b] = (1 - z) * n + z * h[b]
    return out


# %% [markdown]
# ## 四、在序列上展开 LSTM / Section 4: An LSTM over a sequence

# %%
def rnn_forward(xs, h0, c0, W_ih, W_hh, b_ih, b_hh):
    #todo 展开 LSTM / unroll the LSTM
    T = xs.shape[0]
    outputs = torch.zeros(T, h0.shape[0], h0.shape[1], dtype=xs.dtype)
    h, c = h0, c0
    for t in range(T):
        h, c = lstm_cell(xs[t], (h, c), W_ih, W_hh, b_ih, b_hh)
        outputs[t] = h
    return outputs, (h, c)


# %% [markdown]
# ## 五、梯度裁剪 / Section 5: Gradient clipping

# %%
def clip_grad_norm(grads, max_norm):
    #todo 实现按全局范数裁剪 / implement clipping by global norm
    squares = 0.0
    for name in grads:
        for value in grads[name].flatten().tolist():
            squares += value * value
    total_norm = math.sqrt(squares)
    result = {}
    for name in grads:
        if total_norm > max_norm:
            result[name] = grads[name] * (max_norm / total_norm)
        else:
            result[name] = grads[name].clone()
    return result
