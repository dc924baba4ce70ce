"""Plain NumPy references for one SGNS, HogBatch-SGNS, CBOW and GloVe step (exact sigmoid)."""

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def sgns_loss(v, u_pos, u_negs):
    """-log s(v.u_pos) - sum_n log s(-v.u_n) in float64."""
    loss = -np.log(sigmoid(v @ u_pos))
    for u in u_negs:
        loss -= np.log(sigmoid(-(v @ u)))
    return loss


def negative_sampling_step(w_out, h, center, negatives, lr):
    """Update w_out rows sequentially (word2vec.c order); return (grad for h, loss)."""
    grad = np.zeros_like(h)
    loss = 0.0
    targets = [(center, 1.0)] + [(n, 0.0) for n in negatives if n != center]
    for target, label in targets:
        u = w_out[target].astype(np.float64)
        f = float(h @ u)
        g = (label - sigmoid(f)) * lr
        loss += -np.log(sigmoid(f)) if label else -np.log(sigmoid(-f))
        grad += g * u
        w_out[target] = (u + g * h).astype(w_out.dtype)
    return grad, loss


def sgns_step(w_in, w_out, center, context, negatives, lr):
    """Reference of word2vec.sgns_update on float64 copies; returns (w_in, w_out, loss)."""
    w_in, w_out = w_in.astype(np.float64), w_out.astype(np.float64)
    h = w_in[context].copy()
    grad, loss = negative_sampling_step(w_out, h, center, negatives, lr)
    w_in[context] += grad
    return w_in, w_out, loss


def sgns_window_step(w_in, w_out, center, contexts, negatives, lr):
    """Reference of word2vec.sgns_window_update: one minibatch gradient step at the old parameters.

    Loss = sum over contexts c of -log s(v_c.u_center) - sum_n log s(-v_c.u_n), with negatives
    equal to center dropped; every gradient is taken before any row changes.
    """
    w_in, w_out = w_in.astype(np.float64), w_out.astype(np.float64)
    targets = [(center, 1.0)] + [(n, 0.0) for n in negatives if n != center]
    v = w_in[list(contexts)]  # (c, d) copies: the old input rows
    u = w_out[[t for t, _ in targets]]  # (o, d): the old output rows
    labels = np.array([label for _, label in targets])
    scores = v @ u.T
    g = (labels[None, :] - sigmoid(scores)) * lr  # (c, o)
    loss = -np.log(sigmoid(np.where(labels[None, :] == 1.0, scores, -scores))).sum()
    for o, (t, _) in enumerate(targets):
        w_out[t] += g[:, o] @ v
    for c, ctx in enumerate(contexts):
        w_in[ctx] += g[c] @ u
    return w_in, w_out, loss


def cbow_step(w_in, w_out, center, contexts, negatives, lr):
    """Reference of word2vec.cbow_update: mean of contexts as h; every context gets the gradient."""
    w_in, w_out = w_in.astype(np.float64), w_out.astype(np.float64)
    h = w_in[list(contexts)].mean(axis=0)
    grad, loss = negative_sampling_step(w_out, h, center, negatives, lr)
    for c in contexts:
        w_in[c] += grad
    return w_in, w_out, loss


def glove_loss(wi, wj, bi, bj, x, x_max, alpha):
    """f(x) (w_i . w~_j + b_i + b~_j - log x)^2 / 2 in float64."""
    weight = min(1.0, (x / x_max) ** alpha)
    return 0.5 * weight * (wi @ wj + bi + bj - np.log(x)) ** 2


def glove_step(params, gradsq, i, j, x, x_max, alpha, eta, grad_clip=100.0):
    """Reference of glove.glove_update on float64 copies: one AdaGrad step, transcribed from
    glove_thread in Stanford's src/glove.c (2020-): vector gradients clipped to +-grad_clip then
    scaled by eta; the biases step by fdiff / sqrt(sum), without eta."""
    w, c, bw, bc = [np.array(p, np.float64) for p in params]
    gw, gc, gbw, gbc = [np.array(g, np.float64) for g in gradsq]
    diff = w[i] @ c[j] + bw[i] + bc[j] - np.log(x)
    fdiff = min(1.0, (x / x_max) ** alpha) * diff
    loss = 0.5 * fdiff * diff
    t_i = np.clip(fdiff * c[j], -grad_clip, grad_clip) * eta
    t_j = np.clip(fdiff * w[i], -grad_clip, grad_clip) * eta
    w[i] -= t_i / np.sqrt(gw[i])
    c[j] -= t_j / np.sqrt(gc[j])
    gw[i] += t_i**2
    gc[j] += t_j**2
    bw[i] -= fdiff / np.sqrt(gbw[i])
    bc[j] -= fdiff / np.sqrt(gbc[j])
    gbw[i] += fdiff**2
    gbc[j] += fdiff**2
    return (w, c, bw, bc), (gw, gc, gbw, gbc), loss
