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


def hs_path_step(syn1, h, nodes, codes, lr):
    """word2vec.c's hierarchical-softmax loop for hidden vector h on a path (float64 syn1, updated
    in place): each node a logistic unit with label 1 - code, no update where |f| >= 6 (MAX_EXP).
    Returns (grad for h, loss)."""
    grad = np.zeros_like(h)
    loss = 0.0
    for p, code in zip(nodes, codes):
        u = syn1[p].copy()
        f = float(h @ u)
        loss += -np.log(sigmoid(-f)) if code else -np.log(sigmoid(f))
        if abs(f) >= 6.0:
            continue
        g = (1.0 - code - sigmoid(f)) * lr
        grad += g * u
        syn1[p] = u + g * h
    return grad, loss


def sgns_hs_step(w_in, w_out, syn1, center, context, negatives, nodes, codes, lr):
    """word2vec.c skip-gram pair with -hs 1 (and negatives unless empty): (w_in, w_out, syn1, loss)."""
    w_in, w_out, syn1 = (a.astype(np.float64) for a in (w_in, w_out, syn1))
    h = w_in[context].copy()
    grad, loss = hs_path_step(syn1, h, nodes, codes, lr)
    if len(negatives):
        g, ns_loss = negative_sampling_step(w_out, h, center, negatives, lr)
        grad, loss = grad + g, loss + ns_loss
    w_in[context] += grad
    return w_in, w_out, syn1, loss


def cbow_hs_step(w_in, w_out, syn1, center, contexts, negatives, nodes, codes, lr):
    """word2vec.c CBOW with -hs 1: the mean of the contexts as h, each context row takes the gradient."""
    w_in, w_out, syn1 = (a.astype(np.float64) for a in (w_in, w_out, syn1))
    h = w_in[list(contexts)].mean(axis=0)
    grad, loss = hs_path_step(syn1, h, nodes, codes, lr)
    if len(negatives):
        g, ns_loss = negative_sampling_step(w_out, h, center, negatives, lr)
        grad, loss = grad + g, loss + ns_loss
    for c in contexts:
        w_in[c] += grad
    return w_in, w_out, syn1, loss


def sgns_window_hs_step(w_in, w_out, syn1, center, contexts, negatives, nodes, codes, lr):
    """HogBatch skip-gram with -hs: one minibatch step of the window's contexts against the center's
    path (and its negatives unless empty), every gradient at the old rows."""
    w_in0 = w_in.astype(np.float64)
    if len(negatives):
        w_in, w_out, loss = sgns_window_step(w_in, w_out, center, contexts, negatives, lr)
    else:
        w_in, w_out, loss = w_in0.copy(), w_out.astype(np.float64), 0.0
    syn1 = syn1.astype(np.float64)
    v = w_in0[list(contexts)]
    u = syn1[list(nodes)]
    codes = np.asarray(codes, np.float64)
    scores = v @ u.T  # (c, path)
    g = np.where(np.abs(scores) < 6.0, (1.0 - codes[None, :] - sigmoid(scores)) * lr, 0.0)
    loss += -np.log(sigmoid(np.where(codes[None, :] == 0, scores, -scores))).sum()
    for j, p in enumerate(nodes):
        syn1[p] += g[:, j] @ v
    for c, ctx in enumerate(contexts):
        w_in[ctx] += g[c] @ u
    return w_in, w_out, syn1, loss
