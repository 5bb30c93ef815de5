"""Every checked exercise, fed its own worked solution (correct), common wrong answers (not yet, naming the
mistake) and the empty template (not attempted). The checks run on the shipped samples (smoke mode)."""
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from helpers import data, env, exercises, finder

EXERCISES = {(lesson, number): ex for lesson, exs in exercises.EXERCISES.items() for number, ex in exs.items()}


@pytest.fixture(autouse=True)
def smoke(monkeypatch):
    monkeypatch.setenv("COURSE_SMOKE", "1")


def run(code: str, names: tuple[str, ...]) -> list:
    """Execute `code` as a learner's cell would and return the answers it defines."""
    namespace = {"torch": torch, "np": np, "nn": nn, "data": data, "env": env, "finder": finder}
    exec(textwrap.dedent(code), namespace)
    return [namespace[name] for name in names]


# (lesson, exercise): [(a wrong answer, a phrase its verdict must contain), ...] -- at least two each
WRONG = {
    (1, 4): [("def pick_device():\n    return torch.device('cuda')", "neither"),
             ("def pick_device():\n    return torch.device('cuda' if torch.cuda.is_available() else 'cpu')",
              "Apple silicon"),
             ("def pick_device():\n    return 'gpu'", "not a device")],
    (1, 5): [("def steps_per_epoch(n, b, drop_last=False):\n    return n // b", "drop_last=False"),
             ("import math\ndef steps_per_epoch(n, b, drop_last=False):\n    return math.ceil(n / b)", "drop_last=True"),
             ("def steps_per_epoch(n, b, drop_last=False):\n    return n / b", "whole number")],
    (1, 6): [("def accuracy(logits, labels):\n    return (logits.argmax(1) == labels).float().mean().item() * 100",
              "percentage"),
             ("def accuracy(logits, labels):\n    return (logits.argmax(1) == labels).sum().item()", "number of right"),
             ("def accuracy(logits, labels):\n    return (logits.argmax(0)[:len(labels)] == labels).float().mean().item()",
              "dim=1")],
    (2, 2): [("""
        found = finder.find_fer2013(smoke=True)
        pixels = data.preload_faces(found.test).images.float()
        test_mean, test_std = pixels.mean().item(), pixels.std().item()""", "0-255"),
             ("test_mean, test_std = (0.485,), (0.229,)", "ImageNet"),
             ("""
        found = finder.find_fer2013(smoke=True)
        pixels = data.preload_faces(found.test).images.float() / 255
        test_mean, test_std = pixels.mean().item(), pixels.flatten(1).std(1).mean().item()""", "each image's own"),
             ("""
        found = finder.find_fer2013(smoke=True)
        pixels = data.preload_faces(found.train).images.float() / 255
        test_mean, test_std = pixels.mean().item(), pixels.std().item()""", "training split")],
    (2, 3): [("""
        from torchvision.transforms import v2
        end = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize((0.286,), (0.353,))]
        train_tf = v2.Compose([v2.RandomHorizontalFlip(), *end])
        eval_tf = v2.Compose([v2.RandomHorizontalFlip(), *end])""", "repeatable"),
             ("""
        from torchvision.transforms import v2
        end = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
        train_tf = v2.Compose([v2.RandomHorizontalFlip(), *end])
        eval_tf = v2.Compose(end)""", "0-1 scale"),
             ("""
        from torchvision.transforms import v2
        end = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize((0.286,), (0.353,))]
        train_tf = v2.Compose([v2.RandomVerticalFlip(), *end])
        eval_tf = v2.Compose(end)""", "upside down"),
             ("""
        from torchvision.transforms import v2
        train_tf = eval_tf = v2.Compose([v2.ToImage()])""", "ToDtype"),
             ("""
        from torchvision.transforms import v2
        end = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize((0.286,), (0.353,))]
        train_tf = eval_tf = v2.Compose(end)""", "never changes")],
    (2, 4): [("def denormalize(x, mean, std):\n    return x * torch.tensor(std).view(-1, 1, 1)", "reverse order"),
             ("def denormalize(x, mean, std):\n"
              "    return x.mul_(torch.tensor(std).view(-1, 1, 1)).add_(torch.tensor(mean).view(-1, 1, 1))", "in-place"),
             ("def denormalize(x, mean, std):\n    return x * torch.tensor(std) + torch.tensor(mean)", "(C, 1, 1)")],
    (3, 5): [("import numpy as np\ndef per_class_recall(c):\n    return np.diag(c) / c.sum(axis=0)", "precision"),
             ("import numpy as np\ndef per_class_recall(c):\n    return np.diag(c)", "counts"),
             ("import numpy as np\ndef per_class_recall(c):\n    return np.trace(c) / c.sum()", "one recall per class")],
    (3, 8): [("""
        import pandas as pd
        from torch.utils.data import Dataset
        class CSVImages(Dataset):
            def __init__(self, path):
                self.table = torch.tensor(pd.read_csv(path).to_numpy())
            def __len__(self):
                return len(self.table)
            def __getitem__(self, i):
                return self.table[i, 1:].float() / 255, int(self.table[i, 0])""", "(1, 28, 28)"),
             ("""
        import pandas as pd
        from torch.utils.data import Dataset
        class CSVImages(Dataset):
            def __init__(self, path):
                self.table = torch.tensor(pd.read_csv(path).to_numpy())
            def __len__(self):
                return len(self.table)
            def __getitem__(self, i):
                return self.table[i, 1:].float().reshape(1, 28, 28), int(self.table[i, 0])""", "255"),
             ("""
        import pandas as pd
        from torch.utils.data import Dataset
        class CSVImages(Dataset):
            def __init__(self, path):
                self.table = torch.tensor(pd.read_csv(path).to_numpy())
            def __len__(self):
                return len(self.table)
            def __getitem__(self, i):
                return self.table[i].float() / 255, int(self.table[i, 0])""", "label column"),
             ("""
        import pandas as pd
        from torch.utils.data import Dataset
        class CSVImages(Dataset):
            def __init__(self, path):
                self.table = torch.tensor(pd.read_csv(path, header=None).iloc[1:].to_numpy().astype('int64'))
            def __len__(self):
                return len(self.table) + 1
            def __getitem__(self, i):
                return self.table[i, 1:].float().reshape(1, 28, 28) / 255, int(self.table[i, 0])""", "len(dataset)")],
    (3, 9): [("""
        import torch.nn.functional as F
        def mean_loss_and_accuracy(model, loader, device):
            loss = correct = n = 0
            with torch.no_grad():
                for x, y in loader:
                    out = model(x)
                    loss += F.cross_entropy(out, y, reduction="sum").item(); correct += (out.argmax(1) == y).sum().item(); n += len(y)
            return loss / n, correct / n""", "model.eval()"),
             ("""
        import torch.nn.functional as F
        def mean_loss_and_accuracy(model, loader, device):
            model.eval()
            loss = correct = n = 0
            for x, y in loader:
                out = model(x)
                loss += F.cross_entropy(out, y, reduction="sum").item(); correct += (out.argmax(1) == y).sum().item(); n += len(y)
            return loss / n, correct / n""", "no_grad"),
             ("""
        import torch.nn.functional as F
        def mean_loss_and_accuracy(model, loader, device):
            model.eval()
            losses, correct, n = [], 0, 0
            with torch.no_grad():
                for x, y in loader:
                    out = model(x)
                    losses.append(F.cross_entropy(out, y).item()); correct += (out.argmax(1) == y).sum().item(); n += len(y)
            return sum(losses) / len(losses), correct / n""", "batch means"),
             ("""
        import torch.nn.functional as F
        def mean_loss_and_accuracy(model, loader, device):
            model.eval()
            loss = correct = n = 0
            with torch.no_grad():
                for x, y in loader:
                    out = model(x)
                    loss += F.cross_entropy(out, y, reduction="sum", label_smoothing=0.1).item()
                    correct += (out.argmax(1) == y).sum().item(); n += len(y)
            return loss / n, correct / n""", "label smoothing"),
             ("""
        import torch.nn.functional as F
        def mean_loss_and_accuracy(model, loader, device):
            model.eval()
            loss = correct = n = 0
            with torch.no_grad():
                for x, y in loader:
                    out = model(x).softmax(1)
                    loss += F.cross_entropy(out, y, reduction="sum").item(); correct += (out.argmax(1) == y).sum().item(); n += len(y)
            return loss / n, correct / n""", "probabilities")],
    (3, 10): [("""
        import torch.nn.functional as F
        def train_step(model, images, labels, optimizer, scaler, max_norm=1.0):
            optimizer.zero_grad()
            with torch.autocast(images.device.type, dtype=torch.bfloat16):
                loss = F.cross_entropy(model(images), labels)
            scaler.scale(loss).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            scaler.step(optimizer); scaler.update()
            return loss.item()""", "unscale_"),
             ("""
        import torch.nn.functional as F
        def train_step(model, images, labels, optimizer, scaler, max_norm=1.0):
            optimizer.zero_grad()
            with torch.autocast(images.device.type, dtype=torch.bfloat16):
                loss = F.cross_entropy(model(images).softmax(1), labels)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            scaler.step(optimizer); scaler.update()
            return loss.item()""", "probabilities"),
             ("""
        import torch.nn.functional as F
        def train_step(model, images, labels, optimizer, scaler, max_norm=1.0):
            optimizer.zero_grad()
            with torch.autocast(images.device.type, dtype=torch.bfloat16):
                loss = F.cross_entropy(model(images), labels)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            scaler.step(optimizer); scaler.update()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            return loss.item()""", "not clipped"),
             ("""
        import torch.nn.functional as F
        def train_step(model, images, labels, optimizer, scaler, max_norm=1.0):
            with torch.autocast("cuda", dtype=torch.float16):
                loss = F.cross_entropy(model(images), labels)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            scaler.step(optimizer); scaler.update()
            return loss.item()""", "autocast"),
             ("""
        import torch.nn.functional as F
        def train_step(model, images, labels, optimizer, scaler, max_norm=1.0):
            with torch.autocast(images.device.type, dtype=torch.bfloat16):
                loss = F.cross_entropy(model(images), labels)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            scaler.step(optimizer); scaler.update()
            return loss.item()""", "zero_grad")],
    (3, 11): [("def amp_settings(device):\n    return device, torch.float16, True", "device_type"),
             ("def amp_settings(device):\n    return str(device), torch.float16, True", "'cuda:0'"),
             ("def amp_settings(device):\n    return torch.device(device).type, torch.float16, True", "bfloat16")],
    (2, 5): [("""
        from torchvision.transforms import v2
        end = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize((0.508,), (0.255,))]
        face_train_tf = v2.Compose([v2.RandomVerticalFlip(), *end])
        face_eval_tf = v2.Compose(end)""", "upside down"),
              ("""
        from torchvision.transforms import v2
        end = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize((0.508,), (0.255,))]
        face_train_tf = v2.Compose([v2.Resize(224), v2.RandomHorizontalFlip(), *end])
        face_eval_tf = v2.Compose([v2.Resize(224), *end])""", "(1, 48, 48)"),
              ("""
        from torchvision.transforms import v2
        end = [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize((0.508,), (0.255,))]
        face_train_tf = v2.Compose([v2.RandomHorizontalFlip(), *end])
        face_eval_tf = v2.Compose([v2.RandomRotation(10), *end])""", "repeatable")],
    (5, 4): [("""
        from helpers import models
        def load_for_inference(path):
            model = models.build_model("fashion_cnn", 10)
            model.load_state_dict(torch.load(path, weights_only=True))
            return model""", "training mode"),
             ("""
        from helpers import models
        def load_for_inference(path):
            return models.build_model("fashion_cnn", 10).eval()""", "load_state_dict"),
             ("""
        from helpers import models
        def load_for_inference(path):
            model = models.build_model("source_cnn", 10)
            model.load_state_dict(torch.load(path, weights_only=True), strict=False)
            return model.eval()""", "architecture")],
    (5, 5): [("""
        def save_training_state(path, model, optimizer, scheduler, epoch):
            torch.save({"model": model.state_dict(), "epoch": epoch}, path)
        def resume_training_state(path, model, optimizer, scheduler):
            saved = torch.load(path, weights_only=True)
            model.load_state_dict(saved["model"])
            return saved["epoch"] + 1""", "moving averages"),
             ("""
        def save_training_state(path, model, optimizer, scheduler, epoch):
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}, path)
        def resume_training_state(path, model, optimizer, scheduler):
            saved = torch.load(path, weights_only=True)
            model.load_state_dict(saved["model"]); optimizer.load_state_dict(saved["optimizer"])
            return saved["epoch"] + 1""", "scheduler"),
             ("""
        def save_training_state(path, model, optimizer, scheduler, epoch):
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "epoch": epoch}, path)
        def resume_training_state(path, model, optimizer, scheduler):
            saved = torch.load(path, weights_only=True)
            model.load_state_dict(saved["model"]); optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            return saved["epoch"]""", "trained twice")],
    (5, 6): [("""
        def predict_one(model, image, mean, std, class_names):
            x = torch.tensor(np.array(image), dtype=torch.float32)[None, None] / 255
            x = (x - mean[0]) / std[0]
            logits = model.eval()(x)[0]
            return class_names[int(logits.argmax())], float(logits.max())""", "logit"),
             ("""
        def predict_one(model, image, mean, std, class_names):
            x = torch.tensor(np.array(image), dtype=torch.float32)[None, None] / 255
            with torch.no_grad():
                p = model.eval()(x).softmax(1)[0]
            return class_names[int(p.argmax())], float(p.max())""", "normalise"),
             ("""
        def predict_one(model, image, mean, std, class_names):
            x = (torch.tensor(np.array(image), dtype=torch.float32)[None, None] / 255 - mean[0]) / std[0]
            with torch.no_grad():
                p = model(x).softmax(1)[0]
            return class_names[int(p.argmax())], float(p.max())""", "eval mode")],
    (6, 4): [("def sqrt_weights(t, k):\n    t = torch.as_tensor(t)\n    return (1 / torch.bincount(t, minlength=k).float())[t]",
              "1 / count"),
             ("def sqrt_weights(t, k):\n    return 1 / torch.bincount(torch.as_tensor(t), minlength=k).float().sqrt()",
              "one per class"),
             ("def sqrt_weights(t, k):\n    t = torch.as_tensor(t)\n    return torch.bincount(t, minlength=k).float().sqrt()[t]",
              "grow with the class size")],
    (6, 6): [("""
        from torch.utils.data import WeightedRandomSampler
        def balanced_sampler(t, k, g):
            t = torch.as_tensor(t)
            return WeightedRandomSampler((1 / torch.bincount(t, minlength=k).float())[t], len(t), replacement=False, generator=g)""",
              "replacement"),
             ("""
        from torch.utils.data import WeightedRandomSampler
        def balanced_sampler(t, k, g):
            return WeightedRandomSampler(1 / torch.bincount(torch.as_tensor(t), minlength=k).float(), len(t), generator=g)""",
              "one weight per class"),
             ("""
        from torch.utils.data import WeightedRandomSampler
        def balanced_sampler(t, k, g):
            t = torch.as_tensor(t)
            return WeightedRandomSampler(torch.bincount(t, minlength=k).float()[t], len(t), generator=g)""",
              "not balanced"),
             ("""
        from torch.utils.data import WeightedRandomSampler
        def balanced_sampler(t, k, g):
            t = torch.as_tensor(t)
            return WeightedRandomSampler((1 / torch.bincount(t, minlength=k).float())[t], len(t))""", "generator")],
    (6, 7): [("""
        def stratified_split(t, fractions, seed):
            order = torch.randperm(len(t), generator=torch.Generator().manual_seed(seed)).tolist()
            a, b = int(0.7 * len(t)), int(0.85 * len(t))
            return order[:a], order[a:b], order[b:]""", "stratified"),
             ("""
        def stratified_split(t, fractions, seed):
            order = torch.randperm(len(t), generator=torch.Generator().manual_seed(seed)).tolist()
            a = int(0.7 * len(t))
            return order[:a], order[a - 100:], order[a - 100:]""", "leaks"),
             ("""
        def stratified_split(t, fractions, seed):
            t = torch.as_tensor(t)
            parts = [[], [], []]
            for c in range(7):
                m = (t == c).nonzero().flatten()
                m = m[torch.randperm(len(m))].tolist()
                a, b = round(0.7 * len(m)), round(0.85 * len(m))
                parts[0] += m[:a]; parts[1] += m[a:b]; parts[2] += m[b:]
            return parts""", "same seed")],
    (6, 2): [("""
        from sklearn.metrics import accuracy_score
        def choose_tau(logits, labels, prior, taus):
            return max(taus, key=lambda t: accuracy_score(labels, (logits - t * prior.log()).argmax(1)))""", "accuracy"),
             ("""
        from sklearn.metrics import f1_score
        def choose_tau(logits, labels, prior, taus):
            return max(f1_score(labels, (logits - t * prior.log()).argmax(1), average="macro") for t in taus)""",
              "not one of the taus")],
    (6, 8): [("""
        def macro_f1(labels, predictions, k):
            return (torch.as_tensor(labels) == torch.as_tensor(predictions)).float().mean().item()""", "accuracy"),
             ("""
        from sklearn.metrics import f1_score
        def macro_f1(labels, predictions, k):
            return f1_score(labels, predictions, average="weighted")""", "size")],
    (7, 4): [("def linear_schedule(opt, n):\n    return torch.optim.lr_scheduler.LinearLR(opt, end_factor=0.0, total_iters=n)",
              "start_factor"),
             ("def linear_schedule(opt, n):\n"
              "    return torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0, end_factor=0.0, total_iters=10)", "epochs"),
             ("def linear_schedule(opt, n):\n    return torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0, total_iters=n)",
              "end_factor")],
    (7, 6): [("def binary_predictions(logits):\n    return logits.argmax(dim=1)", "argmax"),
             ("def binary_predictions(logits):\n    return (logits.sigmoid() > 0).long()", "sigmoid"),
             ("def binary_predictions(logits):\n    return (logits.reshape(-1) > 0.5).long()", "wrong")],
    (7, 7): [("""
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        def read_scalars(logdir, tag):
            events = EventAccumulator(str(logdir)).Scalars(tag)
            return [e.step for e in events], [e.value for e in events]""", "KeyError"),
             ("""
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        def read_scalars(logdir, tag):
            acc = EventAccumulator(str(logdir)); acc.Reload()
            return [e.step for e in acc.Scalars(tag)], [e.wall_time for e in acc.Scalars(tag)]""", "wall_time"),
             ("""
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        def read_scalars(logdir, tag):
            acc = EventAccumulator(str(logdir)); acc.Reload()
            return [e.step for e in acc.Scalars("train/loss")], [e.value for e in acc.Scalars("train/loss")]""",
              "holds")],
    (7, 8): [("import math\ndef cosine_lr(step, total, peak):\n    return peak * (1 + math.cos(math.pi * step / total))",
              "twice the peak"),
             ("import math\ndef cosine_lr(step, total, peak):\n    return peak * (1 + math.cos(180 * step / total)) / 2",
              "radians")],
    (8, 4): [("""
        def export_free_batch(model, example, path):
            model.eval()
            torch.onnx.export(model, (example,), path, dynamo=True)""", "fixed"),
             ("""
        def export_free_batch(model, example, path):
            model.eval()
            torch.onnx.export(model, (example,), dynamo=True, dynamic_shapes=({0: torch.export.Dim("batch")},))""",
              "no file")],
    (8, 5): [("def preprocess(images, mean, std):\n    return ((images - mean) / std).astype(np.float32)[:, None]", "255"),
             ("def preprocess(images, mean, std):\n    return ((images / 255 - mean) / std)[:, None]", "float32"),
             ("def preprocess(images, mean, std):\n    return ((images / 255 - mean) / std).astype(np.float32)", "channel"),
             ("def preprocess(images, mean, std):\n    return (torch.tensor(images)[:, None] / 255 - mean[0]) / std[0]", "NumPy")],
    (9, 1): [("same_batches_without_set_epoch, same_batches_with_set_epoch = 0, 0", "not reshuffled"),
             ("same_batches_without_set_epoch, same_batches_with_set_epoch = 211, 211", "not all the same"),
             ("same_batches_without_set_epoch, same_batches_with_set_epoch = 27000, 0", "count the batches")],
    (9, 2): [("scored_twice, never_scored = 0, 0", "pads"),
             ("scored_twice, never_scored = 6006, 1", "scored in all"),
             ("scored_twice, never_scored = 6, 6", "count again")],
    (9, 5): [("import math\ndef shard(n, rank, world):\n    per = math.ceil(n / world)\n"
              "    return [i % n for i in range(rank * per, (rank + 1) * per)]", "two shards"),
             ("def shard(n, rank, world):\n    per = n // world\n    return list(range(rank * per, (rank + 1) * per))",
              "in no shard"),
             ("import math\ndef shard(n, rank, world):\n    per = math.ceil(n / world)\n"
              "    return list(range(rank * per, min(n, (rank + 1) * per)))", "within one")],
    (9, 6): [("import math\ndef scaled_lr(lr, base, per, world):\n    return lr * math.sqrt(per / base)", "world size"),
             ("def scaled_lr(lr, base, per, world):\n    return lr * per * world / base", "linear rule")],
}

# Right answers written differently from the solutions: a check accepts any correct answer.
ALSO_RIGHT = {
    (1, 5): "def steps_per_epoch(n, b, drop_last=False):\n    return n // b if drop_last else -(-n // b)",
    (2, 3): """
        from torchvision import transforms as v1
        train_tf = v1.Compose([v1.RandomHorizontalFlip(), v1.ToTensor(), v1.Normalize((0.286,), (0.353,))])
        eval_tf = v1.Compose([v1.ToTensor(), v1.Normalize((0.286,), (0.353,))])""",
    (3, 5): "def per_class_recall(c):\n    c = torch.tensor(c)\n    return c.diag() / c.sum(1)",
    (3, 10): """
        import torch.nn.functional as F
        def train_step(model, images, labels, optimizer, scaler, max_norm=1.0):
            with torch.autocast(images.device.type, dtype=torch.bfloat16):
                loss = F.cross_entropy(model(images), labels)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            scaler.step(optimizer); scaler.update()
            optimizer.zero_grad()          # at the end of the step instead of the start
            return loss.item()""",
    (7, 4): "def linear_schedule(opt, n):\n    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1 - step / n)",
    (9, 1): "same_batches_without_set_epoch, same_batches_with_set_epoch = 211, 0",   # a DataLoader keeps the last batch
    (3, 9): """
        import torch.nn.functional as F
        def mean_loss_and_accuracy(model, loader, device):
            model.eval()
            loss = correct = n = 0
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16):
                for x, y in loader:
                    out = model(x).float()
                    loss += F.cross_entropy(out, y, reduction="sum").item(); correct += (out.argmax(1) == y).sum().item(); n += len(y)
            return loss / n, correct / n""",
    (6, 8): """
        def macro_f1(labels, predictions, k):
            f1 = [2 * ((predictions == c) & (labels == c)).sum() / ((predictions == c).sum() + (labels == c).sum())
                  for c in range(k)]
            return torch.stack(f1).nan_to_num().mean()""",
    (9, 5): "def shard(n, rank, world):\n    return torch.tensor_split(torch.arange(n), world)[rank].tolist()",
}


def test_at_least_25_exercises_each_with_two_wrong_answers():
    assert len(EXERCISES) >= 25
    assert set(WRONG) == set(EXERCISES), set(WRONG) ^ set(EXERCISES)
    assert all(len(wrong) >= 2 for wrong in WRONG.values())


@pytest.mark.parametrize("key", sorted(EXERCISES), ids=lambda k: f"{k[0]:02d}.{k[1]}")
def test_check(key):
    exercise = EXERCISES[key]
    right = exercise.check(*run(exercise.solution_code, exercise.answer_names))
    assert right.status == "correct", right
    for code, phrase in WRONG[key]:
        verdict = exercise.check(*run(code, exercise.answer_names))
        assert verdict.status == "not yet", (code, verdict)
        assert phrase.lower() in verdict.message.lower(), (code, verdict)
    empty = exercise.check(*[None] * len(exercise.answer_names))
    assert empty.status == "not attempted", empty


@pytest.mark.parametrize("key", sorted(ALSO_RIGHT), ids=lambda k: f"{k[0]:02d}.{k[1]}")
def test_other_correct_answers_pass(key):
    exercise = EXERCISES[key]
    verdict = exercise.check(*run(ALSO_RIGHT[key], exercise.answer_names))
    assert verdict.status == "correct", verdict


def test_a_template_function_is_not_attempted():
    exercise = exercises.lesson(3).q5

    def per_class_recall(confusion):
        ...  # your code here

    verdict = exercise.check(per_class_recall)
    assert verdict.status == "not attempted" and "returned None" in verdict.message


def test_hints_come_one_step_at_a_time_and_the_solution_is_code():
    exercise = exercises.lesson(3).q10
    exercise._hints_given = 0
    first, second = exercise.hint(), exercise.hint()
    assert first.startswith("Hint 1 of 3") and second.startswith("Hint 2 of 3") and "hint 3" in second
    assert exercise.hint(1) == first
    assert "```python" in exercise.solution()._repr_markdown_() and "unscale_" in exercise.solution()
    with pytest.raises(ValueError):
        exercise.hint(9)


def test_a_crash_in_the_answer_is_reported_not_raised():
    verdict = exercises.lesson(1).q5.check(lambda n, b, drop_last=False: n / 0)
    assert verdict.status == "not yet" and "ZeroDivisionError" in verdict.message


def test_unknown_lesson():
    with pytest.raises(ValueError, match="no checked exercises"):
        exercises.lesson(42)


def _lesson_cells():
    import json
    from pathlib import Path
    for path in sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("0*.ipynb")):
        yield int(path.name[:2]), path.name, json.loads(path.read_text(encoding="utf-8"))["cells"]


def test_every_check_is_in_its_lesson_and_the_committed_run_says_not_attempted():
    found = set()
    for lesson, name, cells in _lesson_cells():
        listed = "".join("".join(c["source"]) for c in cells if "".join(c["source"]).startswith("## Exercises"))
        for cell in cells:
            source = "".join(cell["source"])
            if cell["cell_type"] != "code" or not source.startswith("ex.q"):
                continue
            number = int(source[4:source.index(".", 4)])
            found.add((lesson, number))
            assert f"\n{number}. **(checked)**" in listed, f"{name}: exercise {number} is not marked (checked)"
            text = "".join(out.get("text", "") or "".join(out.get("data", {}).get("text/plain", ""))
                           for out in cell["outputs"])
            assert text.startswith("Not attempted:"), f"{name} exercise {number}: the committed check says {text!r}"
    assert found == set(EXERCISES), set(EXERCISES) ^ found
