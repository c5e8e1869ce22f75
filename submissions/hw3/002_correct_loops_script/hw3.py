# %% [markdown]
# # 作业三 / Homework 3
#
# 本作业分三部分:一、卷积与池化(补全代码 + 简答题);二、卷积层的前向与反向传播(简答题 + 函数);三、批归一化(简答题 + 函数)。
#
# - 代码题:在每个 `#todo` 注释下方补全代码。不要修改已给出的变量名、函数名和函数签名;B、C 部分的函数只用基本的 `torch` 张量运算实现(不要调用 `torch.nn.functional` 的 `conv2d`、`max_pool2d`、`batch_norm`、`unfold` 等现成函数,也不要用自动求导)。
# - 随机数:评分时会在运行第一个单元之前设置随机种子,A 部分给出的 `torch.randn` 必须是整个 notebook 中最早的随机数抽取。不要在它之前抽取随机数,也不要自己调用 `torch.manual_seed`。
# - 简答题:把答案写在对应题目下方的 `**答 / Answer:**` 单元中,中英文均可。
#
# This homework has three sections: 1. convolution and pooling (fill in code, written questions); 2. the forward and backward pass of a convolutional layer (a written question, functions); 3. batch normalization (a written question, a function).
#
# - Code: fill in the code below each `#todo` comment. Do not rename the given variables or functions or change their signatures; write the Part B and C functions with basic `torch` tensor operations (do not call `torch.nn.functional`'s `conv2d`, `max_pool2d`, `batch_norm`, `unfold` and the like, and do not use autograd).
# - Random numbers: the grader seeds the random number generator before the first cell runs, and the `torch.randn` calls given in Part A must be the notebook's first random draws. Draw no random numbers before them and do not call `torch.manual_seed` yourself.
# - Written questions: write your answer in the `**答 / Answer:**` cell below each question, in Chinese or English.

# %% [markdown]
# ## 一、卷积与池化 / Section 1: Convolution and pooling

# %% [markdown]
# ### 1.1 感受野:一个网络依次是 3×3 卷积(步长 1)、3×3 卷积(步长 1)、2×2 最大池化(步长 2)、3×3 卷积(步长 1)。最后一层输出的一个像素在输入图像上的感受野有多大?为什么常用两层 3×3 卷积代替一层 5×5 卷积? / Receptive field: a network has a 3×3 convolution (stride 1), a 3×3 convolution (stride 1), 2×2 max pooling (stride 2) and a 3×3 convolution (stride 1). How large is the receptive field of one output pixel of the last layer on the input image? Why are two 3×3 convolutions often used instead of one 5×5?

# %% [markdown]
# **Answer:** 10x10. Receptive field recursion r_l = r_{l-1} + (k_l - 1) * j_{l-1}, jump j_l = j_{l-1} * s_l:
# conv3 -> r = 3, conv3 -> r = 5, pool 2/2 -> r = 6 and j = 2, conv3 -> r = 6 + 2 * 2 = 10.
# Two 3x3 layers see the same 5x5 region as one 5x5 layer with fewer parameters (18C^2 instead of 25C^2)
# and one more nonlinearity (ReLU) between them.

# %% [markdown]
# ### 1.2 补全一个卷积层的计算 / Complete one convolutional layer (A 部分 / Part A)
#
# 在下面两个代码单元中补全 `#todo` 处的代码(这里可以使用 `torch.nn.functional`):先用卷积核 `W` 和偏置 `bias` 对图像 `X` 做卷积(步长 1、填充 1),得到 `Z`;再经过 ReLU 得到 `A`;最后做 2×2 最大池化(步长 2),得到特征图 `Y`。
#
# Fill in the code at each `#todo` in the two cells below (here you may use `torch.nn.functional`): convolve the image `X` with the kernels `W` and biases `bias` (stride 1, padding 1) to get `Z`; apply ReLU to get `A`; finally 2×2 max pooling (stride 2) gives the feature map `Y`.
#
# $$Z_{f,i,j} = b_f + \sum_{c}\sum_{k,l} W_{f,c,k,l}\, X^{\text{pad}}_{c,\,i+k,\,j+l}, \qquad A = \max(Z, 0), \qquad Y_{f,i,j} = \max_{0 \le k,l < 2} A_{f,\,2i+k,\,2j+l}$$

# %%
import torch
import torch.nn.functional as F
# 评分时会先设置随机种子,下面三次 torch.randn 必须是最早的随机数抽取 / the grader seeds the RNG first: these three torch.randn calls must be the first random draws
# 一张 3 通道 8x8 的图像,2 个 3x3 的卷积核及其偏置 / a 3-channel 8x8 image, two 3x3 kernels and their biases
X = torch.randn(1, 3, 8, 8)
W = torch.randn(2, 3, 3, 3)
bias = torch.randn(2)
#todo 卷积:步长 1,填充 1,Z 的形状为 (1, 2, 8, 8) / convolution: stride 1, padding 1; Z has shape (1, 2, 8, 8)
Z = F.conv2d(X, W, bias, stride=1, padding=1)

# %%
#todo ReLU 激活 / ReLU activation
A = torch.relu(Z)

#todo 2x2 最大池化,步长 2,得到特征图 Y,形状 (1, 2, 4, 4) / 2x2 max pooling, stride 2: the feature map Y, shape (1, 2, 4, 4)
Y = F.max_pool2d(A, 2, 2)
print(Y.shape)

# %% [markdown]
# ### 1.3 为什么卷积网络中要使用池化层?最大池化和平均池化有什么区别? / Why do convolutional networks use pooling layers? How do max pooling and average pooling differ?

# %% [markdown]
# **Answer:** Pooling downsamples the feature maps: less computation and memory in later layers and a larger
# receptive field for them. Taking the max (or mean) over a small window makes the features robust to small shifts
# (local translation invariance). It has no parameters. Max pooling keeps the strongest response in the window
# (whether the feature is present), average pooling keeps the average, which is smoother but dilutes strong responses.

# %% [markdown]
# ## 二、卷积层的前向与反向传播 / Section 2: The forward and backward pass of a convolutional layer

# %% [markdown]
# ### 2.1 卷积层的权重共享对反向传播意味着什么?为什么 dw 要对所有输出位置和批中所有样本求和,而 dx 相当于用旋转 180° 的卷积核对 dout 做“全”卷积? / What does weight sharing in a convolutional layer mean for backpropagation? Why does dw sum over every output position and every sample of the batch, and why is dx a "full" convolution of dout with the kernel rotated by 180°?

# %% [markdown]
# **Answer:** With weight sharing the same kernel is applied at every position of every sample, so by the chain rule
# the gradient of a weight is the sum of the contributions of all outputs it produced: dw sums
# dout[n, f, i, j] * x_pad[n, :, window] over n, i, j (a cross-correlation of x with dout), db sums dout over the batch
# and the positions. Each input pixel is read by several windows with different kernel entries; collecting those
# contributions is a full convolution of dout with the kernel rotated by 180 degrees (a transposed convolution).

# %% [markdown]
# ## B 部分:卷积与池化函数 / Part B: convolution and pooling functions
#
# 实现下面三个函数,只用基本的 `torch` 张量运算(可以用循环)。张量的形状:`x` 为 `(N, C, H, W)`,卷积核 `w` 为 `(F, C, KH, KW)`,偏置 `b` 为 `(F,)`;`stride`、`padding` 是整数,高和宽方向相同。输出大小 `OH = (H + 2 * padding - KH) // stride + 1`,`OW` 同理。
#
# Implement the three functions below with basic `torch` tensor operations (loops are fine). Shapes: `x` is `(N, C, H, W)`, the kernels `w` are `(F, C, KH, KW)`, the biases `b` are `(F,)`; `stride` and `padding` are ints, the same for height and width. The output size is `OH = (H + 2 * padding - KH) // stride + 1`, likewise `OW`.

# %%
import torch


# %%
def conv2d(x, w, b, stride=1, padding=0):
    """二维卷积的前向传播(与 torch.nn.functional.conv2d 相同)。
    x: (N, C, H, W);w: (F, C, KH, KW);b: (F,);stride、padding: 整数(默认 1 和 0)。
    先在 x 的上下左右各补 padding 行/列 0,再把每个卷积核在输入上滑动(步长 stride),与窗口逐元素相乘求和,
    再加上该核的偏置。注意:深度学习中的“卷积”是互相关,卷积核不翻转。
    返回 out: (N, F, OH, OW),OH = (H + 2 * padding - KH) // stride + 1,OW = (W + 2 * padding - KW) // stride + 1。

    The forward pass of a 2-d convolution (as torch.nn.functional.conv2d).
    x: (N, C, H, W); w: (F, C, KH, KW); b: (F,); stride, padding: ints (defaults 1 and 0).
    Pad x with `padding` rows/columns of zeros on every side, slide each kernel over it with step `stride`,
    multiply it with the window elementwise and sum, and add the kernel's bias. Deep learning's
    "convolution" is a cross-correlation: the kernel is not flipped.
    Returns out: (N, F, OH, OW), OH = (H + 2 * padding - KH) // stride + 1, OW = (W + 2 * padding - KW) // stride + 1.
    """
    #todo 实现卷积的前向传播 / implement the forward pass of the convolution
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    H_out = 1 + (H + 2 * padding - HH) // stride
    W_out = 1 + (W + 2 * padding - WW) // stride
    x_pad = torch.zeros((N, C, H + 2 * padding, W + 2 * padding))
    x_pad[:, :, padding:padding + H, padding:padding + W] = x
    out = torch.zeros((N, F, H_out, W_out))
    for n in range(N):
        for f in range(F):
            for i in range(H_out):
                for j in range(W_out):
                    h0 = i * stride
                    w0 = j * stride
                    out[n, f, i, j] = torch.sum(x_pad[n, :, h0:h0 + HH, w0:w0 + WW] * w[f]) + b[f]
    return out


# %%
def max_pool2d(x, kernel_size, stride):
    """最大池化(与 torch.nn.functional.max_pool2d(x, kernel_size, stride) 相同,不补零)。
    x: (N, C, H, W);kernel_size: 窗口的边长(整数);stride: 步长(整数)。
    每个通道上,取每个 kernel_size x kernel_size 窗口中的最大值;放不下的窗口丢弃(向下取整)。
    返回 (N, C, OH, OW),OH = (H - kernel_size) // stride + 1,OW 同理。

    Max pooling (as torch.nn.functional.max_pool2d(x, kernel_size, stride), no padding).
    x: (N, C, H, W); kernel_size: the window's side (an int); stride: the step (an int).
    Each output is the max of one kernel_size x kernel_size window of one channel; a window that does not
    fit is dropped (floor). Returns (N, C, OH, OW), OH = (H - kernel_size) // stride + 1, likewise OW.
    """
    #todo 实现最大池化 / implement max pooling
    N, C, H, W = x.shape
    H_out = 1 + (H - kernel_size) // stride
    W_out = 1 + (W - kernel_size) // stride
    out = torch.zeros((N, C, H_out, W_out))
    for n in range(N):
        for c in range(C):
            for i in range(H_out):
                for j in range(W_out):
                    h0 = i * stride
                    w0 = j * stride
                    out[n, c, i, j] = torch.max(x[n, c, h0:h0 + kernel_size, w0:w0 + kernel_size])
    return out


# %%
def conv2d_backward(dout, x, w, b, stride, padding):
    """卷积层的反向传播。
    dout: (N, F, OH, OW),损失对 conv2d(x, w, b, stride, padding) 输出的梯度;x、w、b、stride、padding 同 conv2d。
    返回字典 {"dx": dx, "dw": dw, "db": db}:dx (N, C, H, W)、dw (F, C, KH, KW)、db (F,),
    分别是损失对 x、w、b 的梯度(形状与 x、w、b 相同;dx 不含填充部分)。

    The backward pass of the convolutional layer.
    dout: (N, F, OH, OW), the gradient of the loss with respect to conv2d(x, w, b, stride, padding);
    x, w, b, stride, padding as for conv2d.
    Returns a dict {"dx": dx, "dw": dw, "db": db}: dx (N, C, H, W), dw (F, C, KH, KW), db (F,), the
    gradients of the loss with respect to x, w and b (each with the shape of x, w, b; dx without the padding).
    """
    #todo 计算 dx、dw、db / compute dx, dw and db
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, H_out, W_out = dout.shape
    x_pad = torch.zeros((N, C, H + 2 * padding, W + 2 * padding))
    x_pad[:, :, padding:padding + H, padding:padding + W] = x
    dx_pad = torch.zeros_like(x_pad)
    dw = torch.zeros_like(w)
    db = torch.zeros_like(b)
    for n in range(N):
        for f in range(F):
            db[f] += torch.sum(dout[n, f])
            for i in range(H_out):
                for j in range(W_out):
                    h0 = i * stride
                    w0 = j * stride
                    dw[f] += x_pad[n, :, h0:h0 + HH, w0:w0 + WW] * dout[n, f, i, j]
                    dx_pad[n, :, h0:h0 + HH, w0:w0 + WW] += w[f] * dout[n, f, i, j]
    dx = dx_pad[:, :, padding:padding + H, padding:padding + W]
    return {"dx": dx, "dw": dw, "db": db}


# %% [markdown]
# ## 三、批归一化 / Section 3: Batch normalization

# %% [markdown]
# ### 3.1 批归一化在训练和测试时的计算有什么不同?为什么测试时要用滑动平均的统计量? / How does batch normalization compute differently at training and at test time? Why are running averages used at test time?

# %% [markdown]
# **Answer:** Training: normalise with the mini-batch mean and variance, then scale and shift with gamma and beta, and
# update running_mean / running_var as moving averages with momentum. Test: use the running statistics instead of the
# batch statistics, so the output is deterministic and does not depend on the other samples in the batch (a batch of
# one works too). In PyTorch, model.eval() switches to this mode.

# %% [markdown]
# ## C 部分:批归一化函数 / Part C: the batch normalization function
#
# 输入 `x` 的形状为 `(N, D)`(N 个样本,每个 D 个特征),对每个特征沿批次维(`dim=0`)归一化。只用基本的 `torch` 张量运算。
#
# The input `x` has shape `(N, D)` (N samples of D features); each feature is normalised over the batch dim (`dim=0`). Use basic `torch` tensor operations only.

# %%
def batch_norm(x, gamma, beta, running_mean, running_var, mode, momentum=0.1, eps=1e-5):
    """批归一化(与 torch.nn.functional.batch_norm 相同)。
    x: (N, D);gamma、beta、running_mean、running_var: (D,);mode: 字符串 "train" 或 "eval"(评分时以关键字参数 mode="train" 传入);
    momentum、eps: 浮点数。
    - mode == "train":用本批的均值 mean 和有偏方差 var(除以 N)归一化:out = (x - mean) / sqrt(var + eps) * gamma + beta;
      并更新滑动统计量:running_mean = (1 - momentum) * running_mean + momentum * mean,
      running_var = (1 - momentum) * running_var + momentum * 无偏方差(除以 N - 1)。训练模式下 N >= 2。
    - mode == "eval":用 running_mean、running_var 代替本批的统计量归一化,滑动统计量不变。
    返回元组 (out, running_mean, running_var):out (N, D),后两个是更新后的 (D,) 张量。返回新的张量,不要原地修改传入的参数。

    Batch normalization (as torch.nn.functional.batch_norm).
    x: (N, D); gamma, beta, running_mean, running_var: (D,); mode: the string "train" or "eval" (the grader passes it as a
    keyword, mode="train"); momentum, eps: floats.
    - mode == "train": normalise with the batch mean and BIASED variance (divided by N):
      out = (x - mean) / sqrt(var + eps) * gamma + beta; and update the running statistics:
      running_mean = (1 - momentum) * running_mean + momentum * mean,
      running_var = (1 - momentum) * running_var + momentum * the UNBIASED variance (divided by N - 1). N >= 2 in train mode.
    - mode == "eval": normalise with running_mean and running_var instead of the batch's statistics; they stay unchanged.
    Returns a tuple (out, running_mean, running_var): out (N, D) and the updated (D,) statistics, as new tensors
    (do not modify the arguments in place).
    """
    #todo 实现批归一化 / implement batch normalization
    if mode == "train":
        N = x.shape[0]
        mu = torch.sum(x, dim=0) / N
        xc = x - mu
        var = torch.sum(xc ** 2, dim=0) / N
        out = gamma * xc / torch.sqrt(var + eps) + beta
        new_mean = momentum * mu + (1 - momentum) * running_mean
        new_var = momentum * var * N / (N - 1) + (1 - momentum) * running_var
    else:
        out = gamma * (x - running_mean) / torch.sqrt(running_var + eps) + beta
        new_mean = running_mean.clone()
        new_var = running_var.clone()
    return out, new_mean, new_var
