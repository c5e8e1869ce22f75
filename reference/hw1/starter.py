# %% [markdown]
# # 作业一 / Homework 1
#
# 本作业分五部分:一、梯度消失、梯度裁剪与 LSTM(简答题);二、手动展开一个 RNN(补全代码);三、RNN、LSTM、GRU 单元(函数);四、在整个序列上展开 LSTM(函数);五、按全局范数裁剪梯度(函数)。
#
# - 代码题:在每个 `#todo` 注释下方补全代码。不要修改已给出的变量名、函数名和函数签名;只使用 `torch` 的张量运算,不要调用 `torch.nn.RNNCell`、`torch.nn.LSTMCell`、`torch.nn.GRUCell`、`torch.nn.LSTM` 或 `torch.nn.utils.clip_grad_norm_`(可以用它们在本地检查自己的结果)。
# - 权重的存法与 PyTorch 相同:形状为 (输出维, 输入维),计算时写 `x @ W.T`;批量维在最前:`x` 为 (B, I),`h`、`c` 为 (B, H)。
# - 随机数:第二部分的权重由 `torch.randn` 生成。评分时程序会先设置随机种子,所以不要自己调用 `torch.manual_seed`,也不要在那个单元之前插入其他生成随机数的代码(否则得到的权重会不同)。
# - 简答题:把答案写在对应题目下方的 `**答 / Answer:**` 单元中,中英文均可。
#
# This homework has five sections: 1. vanishing gradients, gradient clipping and LSTMs (written questions); 2. unrolling an RNN by hand (fill in code); 3. RNN, LSTM and GRU cells (functions); 4. an LSTM unrolled over a whole sequence (function); 5. gradient clipping by global norm (function).
#
# - Code: fill in the code below each `#todo` comment. Do not rename the given variables or functions or change their signatures; use `torch` tensor operations only, not `torch.nn.RNNCell`, `torch.nn.LSTMCell`, `torch.nn.GRUCell`, `torch.nn.LSTM` or `torch.nn.utils.clip_grad_norm_` (you may use them to check your results locally).
# - Weights are stored as PyTorch stores them, (out_features, in_features), and applied as `x @ W.T`; the batch comes first: `x` is (B, I), `h` and `c` are (B, H).
# - Randomness: Section 2's weights come from `torch.randn`. The grader seeds the random number generator before running your notebook, so do not call `torch.manual_seed` yourself and do not draw random numbers before that cell (the weights would come out different).
# - Written questions: write your answer in the `**答 / Answer:**` cell below each question, in Chinese or English.

# %% [markdown]
# ## 一、梯度消失、梯度裁剪与 LSTM / Section 1: Vanishing gradients, clipping and LSTMs

# %% [markdown]
# ### 1.1 为什么 vanilla RNN 容易出现梯度消失或梯度爆炸?(可以结合第二部分的 `J` 说明)/ Why does a vanilla RNN suffer from vanishing or exploding gradients? (You may use Section 2's `J`.)

# %% [markdown]
# **答 / Answer:**
#

# %% [markdown]
# ### 1.2 梯度裁剪是如何工作的?它解决的是梯度消失还是梯度爆炸? / How does gradient clipping work, and does it address vanishing or exploding gradients?

# %% [markdown]
# **答 / Answer:**
#

# %% [markdown]
# ### 1.3 为什么 LSTM 能缓解梯度消失?它能彻底解决这个问题吗? / Why does an LSTM mitigate vanishing gradients, and does it solve the problem?

# %% [markdown]
# **答 / Answer:**
#

# %% [markdown]
# ## 二、手动展开 RNN / Section 2: Unrolling an RNN by hand
#
# 在下面三个代码单元中补全 `#todo` 处的代码。序列 `X` 有 5 步,每步是一个 4 维向量;隐藏状态也是 4 维,从 `h0 = 0` 开始:
#
# $$h_t = \tanh(W_{xh} x_t + W_{hh} h_{t-1} + b_h)$$
#
# 1. `XW`:每一步的输入项 $W_{xh} x_t + b_h$,一次算出全部 5 步,形状 (5, 4)。
# 2. `H`:5 个隐藏状态,`H[t]` 是第 t 步更新之后的状态(即 $h_{t+1}$,不包括 `h0`),形状 (5, 4)。
# 3. `J`:最后一个隐藏状态对初始状态的雅可比矩阵,`J[i, j]` $= \partial h_5[i] / \partial h_0[j]$,形状 (4, 4)。由链式法则,每一步 $\partial h_{t+1} / \partial h_t = \operatorname{diag}(1 - h_{t+1}^2)\, W_{hh}$,即 `torch.diag(1 - H[t] ** 2) @ W_hh`,后面的步乘在左边。可以用 `torch.autograd.functional.jacobian` 检查结果。
#
# Fill in the code at each `#todo` in the three cells below. The sequence `X` has 5 steps, each a 4-dimensional vector; the hidden state has 4 dimensions too and starts from `h0 = 0`:
#
# 1. `XW`: the input term $W_{xh} x_t + b_h$ of every step, all 5 steps at once, shape (5, 4).
# 2. `H`: the 5 hidden states; `H[t]` is the state after step t's update (that is $h_{t+1}$; `h0` is not included), shape (5, 4).
# 3. `J`: the Jacobian of the last hidden state with respect to the initial one, `J[i, j]` $= \partial h_5[i] / \partial h_0[j]$, shape (4, 4). By the chain rule each step contributes $\partial h_{t+1} / \partial h_t = \operatorname{diag}(1 - h_{t+1}^2)\, W_{hh}$, i.e. `torch.diag(1 - H[t] ** 2) @ W_hh`, later steps on the left. You can check it with `torch.autograd.functional.jacobian`.

# %%
import torch
# 一个 5 步的序列,每步是一个 4 维向量(作业二中的 5 个词向量)/ a sequence of 5 steps, 4 features each (hw2's five word vectors)
X = torch.tensor([[1.0, 0.0, 1.0, 0.0],
                  [1.0, 2.0, 1.0, 0.0],
                  [0.0, 1.0, 0.0, 1.0],
                  [0.0, 1.0, 0.0, 0.0],
                  [1.0, 0.0, 1.0, 0.0]])
h0 = torch.zeros(4)  # 初始隐藏状态 / the initial hidden state
# 初始化权重,形状与 nn.RNNCell 相同:(输出维, 输入维);评分时随机种子已经设好,不要调用 torch.manual_seed
# initialise the weights, shaped like nn.RNNCell's: (out, in); the grader has seeded the RNG, do not call torch.manual_seed
W_xh = torch.randn(4, 4) * 0.5
W_hh = torch.randn(4, 4) * 0.5
b_h = torch.randn(4) * 0.1
#todo 计算每一步的输入项 XW[t] = W_xh x_t + b_h,一次算出全部 5 步 / the input term XW[t] = W_xh x_t + b_h of every step, all 5 at once
XW = ...

# %%
#todo 从 h0 开始逐步展开 RNN:H[t] = tanh(XW[t] + h @ W_hh.T),h 是上一步的状态 / unroll the RNN from h0: H[t] = tanh(XW[t] + h @ W_hh.T), h being the previous state
H = ...
print(H)

# %%
#todo 用链式法则计算雅可比矩阵 J = ∂h_5/∂h_0(每一步乘以 diag(1 - H[t]**2) @ W_hh,后面的步乘在左边)/ the Jacobian J = dh_5/dh_0 by the chain rule (each step multiplies by diag(1 - H[t]**2) @ W_hh, later steps on the left)
J = ...
print(J)

# %% [markdown]
# ## 三、循环单元 / Section 3: Recurrent cells
#
# 实现下面三个函数,每个计算一个时间步,结果与 PyTorch 的对应模块完全相同(可以用它们在本地检查)。权重形状为 (输出维, 输入维),用 `x @ W.T`;LSTM 的 `W_ih` 有 4H 行,GRU 的有 3H 行,每个门占连续的 H 行。
#
# Implement the three functions below; each computes one time step, exactly as PyTorch's module of the same kind (use them to check locally). Weights are (out_features, in_features), applied as `x @ W.T`; an LSTM's `W_ih` has 4H rows and a GRU's 3H, each gate taking a contiguous block of H rows.

# %%
import torch


# %%
def rnn_cell(x, h, W_xh, W_hh, b_h):
    """RNN 单元(与 torch.nn.RNNCell(nonlinearity="tanh") 相同)。
    x: (B, I);h: (B, H);W_xh: (H, I);W_hh: (H, H);b_h: (H,)。
    返回 h' = tanh(x @ W_xh.T + h @ W_hh.T + b_h),形状 (B, H)。

    A vanilla RNN cell (as torch.nn.RNNCell with nonlinearity="tanh").
    x: (B, I); h: (B, H); W_xh: (H, I); W_hh: (H, H); b_h: (H,).
    Returns h' = tanh(x @ W_xh.T + h @ W_hh.T + b_h), of shape (B, H).
    """
    #todo 实现 RNN 单元 / implement the RNN cell
    raise NotImplementedError


# %%
def lstm_cell(x, state, W_ih, W_hh, b_ih, b_hh):
    """LSTM 单元(与 torch.nn.LSTMCell 相同)。
    x: (B, I);state = (h, c),h、c 均为 (B, H);W_ih: (4H, I);W_hh: (4H, H);b_ih、b_hh: (4H,)。
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh,形状 (B, 4H),按顺序每 H 列一个门:
    i(输入门)、f(遗忘门)、g(候选细胞状态)、o(输出门)。i、f、o 用 sigmoid,g 用 tanh;
    c' = f * c + i * g,h' = o * tanh(c')。
    返回元组 (h', c'),均为 (B, H)。

    An LSTM cell (as torch.nn.LSTMCell).
    x: (B, I); state = (h, c), both (B, H); W_ih: (4H, I); W_hh: (4H, H); b_ih, b_hh: (4H,).
    gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh, of shape (B, 4H), holds one gate per H columns,
    in the order i (input), f (forget), g (cell candidate), o (output). i, f, o use a sigmoid,
    g uses tanh; c' = f * c + i * g and h' = o * tanh(c').
    Returns the tuple (h', c'), both (B, H).
    """
    #todo 实现 LSTM 单元 / implement the LSTM cell
    raise NotImplementedError


# %%
def gru_cell(x, h, W_ih, W_hh, b_ih, b_hh):
    """GRU 单元(与 torch.nn.GRUCell 相同)。
    x: (B, I);h: (B, H);W_ih: (3H, I);W_hh: (3H, H);b_ih、b_hh: (3H,)。
    gi = x @ W_ih.T + b_ih 和 gh = h @ W_hh.T + b_hh 都按顺序每 H 列一块:r(重置门)、z(更新门)、n(候选状态)。
    r = sigmoid(gi_r + gh_r),z = sigmoid(gi_z + gh_z),n = tanh(gi_n + r * gh_n)(gh_n 含 b_hh 的 n 部分),
    h' = (1 - z) * n + z * h。返回 h',形状 (B, H)。

    A GRU cell (as torch.nn.GRUCell).
    x: (B, I); h: (B, H); W_ih: (3H, I); W_hh: (3H, H); b_ih, b_hh: (3H,).
    gi = x @ W_ih.T + b_ih and gh = h @ W_hh.T + b_hh each hold one block per H columns, in the order
    r (reset), z (update), n (new). r = sigmoid(gi_r + gh_r), z = sigmoid(gi_z + gh_z),
    n = tanh(gi_n + r * gh_n) (gh_n includes b_hh's n part), h' = (1 - z) * n + z * h.
    Returns h', of shape (B, H).
    """
    #todo 实现 GRU 单元 / implement the GRU cell
    raise NotImplementedError


# %% [markdown]
# ## 四、在序列上展开 LSTM / Section 4: An LSTM over a sequence
#
# 用 `lstm_cell` 把 LSTM 在整个序列上展开,结果与一层、`batch_first=False` 的 `torch.nn.LSTM` 相同(它的 `h_n`、`c_n` 多一个层数维,这里没有)。
#
# Unroll the LSTM over a whole sequence with `lstm_cell`, exactly as a one-layer `torch.nn.LSTM` with `batch_first=False` (whose `h_n`, `c_n` have an extra leading layer dim that this function does not).

# %%
def rnn_forward(xs, h0, c0, W_ih, W_hh, b_ih, b_hh):
    """在整个序列上展开 LSTM(与一层、batch_first=False 的 torch.nn.LSTM 相同)。
    xs: (T, B, I);h0、c0: (B, H);W_ih、W_hh、b_ih、b_hh 与 lstm_cell 相同。
    从状态 (h0, c0) 开始,对 t = 0, ..., T-1 依次计算 (h, c) = lstm_cell(xs[t], (h, c), ...)。
    返回 (outputs, (h_n, c_n)):outputs 形状 (T, B, H),outputs[t] 是第 t 步之后的隐藏状态 h;
    h_n、c_n 是最后一步之后的状态,均为 (B, H)(outputs[-1] 等于 h_n)。

    The LSTM unrolled over a sequence (as a one-layer torch.nn.LSTM with batch_first=False).
    xs: (T, B, I); h0, c0: (B, H); W_ih, W_hh, b_ih, b_hh as for lstm_cell.
    Starting from the state (h0, c0), compute (h, c) = lstm_cell(xs[t], (h, c), ...) for t = 0, ..., T-1.
    Returns (outputs, (h_n, c_n)): outputs of shape (T, B, H), outputs[t] being the hidden state h
    after step t; h_n and c_n, both (B, H), the state after the last step (outputs[-1] equals h_n).
    """
    #todo 展开 LSTM / unroll the LSTM
    raise NotImplementedError


# %% [markdown]
# ## 五、梯度裁剪 / Section 5: Gradient clipping
#
# 按全局范数裁剪一组梯度。公式与 `torch.nn.utils.clip_grad_norm_` 相同(它原地修改参数的 `.grad` 并返回总范数;这里不修改输入,返回裁剪后的新字典)。
#
# Clip a set of gradients by their global norm, with `torch.nn.utils.clip_grad_norm_`'s formula (which changes the parameters' `.grad` in place and returns the total norm; this function leaves its input alone and returns a new dict of clipped gradients).

# %%
def clip_grad_norm(grads, max_norm):
    """按全局范数裁剪梯度。
    grads: 字典 {参数名: 梯度张量}(本题的键为 "W_ih"、"W_hh"、"b_ih"、"b_hh");max_norm: 浮点数(> 0)。
    total_norm = 所有梯度合在一起的 L2 范数 = sqrt(Σ_k ‖grads[k]‖²);
    coef = min(1, max_norm / (total_norm + 1e-6));返回 {k: grads[k] * coef}。
    返回新的字典(键相同、顺序相同),不要原地修改 grads 里的张量。

    Gradient clipping by global norm.
    grads: a dict {parameter name: gradient tensor} (here the keys are "W_ih", "W_hh", "b_ih", "b_hh");
    max_norm: a float (> 0). total_norm = the L2 norm of all the gradients together = sqrt(sum_k ||grads[k]||^2);
    coef = min(1, max_norm / (total_norm + 1e-6)); returns {k: grads[k] * coef}.
    Return a new dict (same keys, same order); do not modify the tensors in grads in place.
    """
    #todo 实现按全局范数裁剪 / implement clipping by global norm
    raise NotImplementedError
