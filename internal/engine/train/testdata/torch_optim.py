"""Reference optimizer trajectories from PyTorch for optim_test.go.

Run with Debian's /usr/bin/python3 (torch 1.13):
    /usr/bin/python3 testdata/torch_optim.py > testdata/torch_optim.json
The test also runs it live when torch is importable and compares.
"""
import json
import torch

torch.manual_seed(1234)
SHAPES = [(5,), (2, 3), (1,)]
STEPS = 6


def case(name, make_opt, hyper):
    params = [torch.nn.Parameter(torch.randn(s) * 0.5) for s in SHAPES]
    init = [p.detach().clone().flatten().tolist() for p in params]
    opt = make_opt(params)
    grads, lrs, out = [], [], []
    for step in range(STEPS):
        lr = 1e-2 * (step + 1) / STEPS + 1e-3
        for g in opt.param_groups:
            g["lr"] = lr
        gs = [torch.randn(s) * (0.1 if step % 2 else 2.0) for s in SHAPES]
        if step == 3:
            gs[0][1] = 0.0  # exact zero gradient element
        for p, g in zip(params, gs):
            p.grad = g.clone()
        opt.step()
        grads.append([g.flatten().tolist() for g in gs])
        lrs.append(lr)
        out.append([p.detach().flatten().tolist() for p in params])
    return {"name": name, "hyper": hyper, "shapes": [list(s) for s in SHAPES],
            "init": init, "grads": grads, "lrs": lrs, "want": out}


cases = [
    case("adamw_default", lambda ps: torch.optim.AdamW(ps, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1),
         {"optimizer": "adamw", "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1}),
    case("adamw_betas", lambda ps: torch.optim.AdamW(ps, lr=1e-3, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.01),
         {"optimizer": "adamw", "beta1": 0.8, "beta2": 0.95, "eps": 1e-6, "weight_decay": 0.01}),
    case("sgd_momentum", lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9, weight_decay=0.01),
         {"optimizer": "sgd", "momentum": 0.9, "weight_decay": 0.01}),
    case("sgd_plain", lambda ps: torch.optim.SGD(ps, lr=1e-3),
         {"optimizer": "sgd", "momentum": 0.0, "weight_decay": 0.0}),
]
print(json.dumps({"torch": torch.__version__, "cases": cases}, indent=1))
