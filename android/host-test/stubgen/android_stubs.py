#!/usr/bin/env python3
"""Build a compile-only `android.jar` from public API descriptions.

No `android.jar` can be fetched from the registries this project may use, so the stub jar is
generated from what they do carry:

1. AOSP's API signature file `core/api/current.txt` (metalava "Signature format: 2.0") from
   Debian's source package `android-platform-frameworks-base` (trixie: 14~beta1, about API 33).
   This is exact: modifiers, generics, abstract methods, constants.
2. The PyPI package `chaquopy-stubs-android` (API 36 as Python `.pyi`), for classes and members
   newer than (1) or living in mainline modules that (1) lacks (e.g. `android.provider.MediaStore`).
   Its types are approximate (a Java `long` return reads `int`, interfaces look like classes),
   so members taken from it are erased (no generics) and never abstract.
3. `api-overrides.txt` beside this file: signature-format lines that give the exact Java type of a
   few members that (2) reports lossily. Every override must name a member that (2) or (1) has,
   so this file cannot invent API.

The output holds class files written directly (no method bodies): javac and kotlinc read only
the symbols, so a stub class need not be loadable. Writing class files rather than Java sources
avoids re-deriving what the signature file leaves out (inherited abstract methods, super
constructor chains). java.* and javax.* are left to the host JDK.

Usage: android_stubs.py --api current.txt [--chaquopy DIR] [--overrides FILE] --out android.jar
"""
from __future__ import annotations

import argparse
import ast
import os
import re
import struct
import sys
import zipfile
from dataclasses import dataclass, field

PRIMS = {"boolean": "Z", "byte": "B", "char": "C", "short": "S", "int": "I", "long": "J",
         "float": "F", "double": "D", "void": "V"}
MODIFIERS = {"public", "protected", "private", "static", "final", "abstract", "default",
             "synchronized", "native", "transient", "volatile", "strictfp", "sealed"}
# JDK interfaces that appear as type-variable bounds (signature `T::L...;` vs `T:L...;`).
JDK_INTERFACES = {"java/lang/Comparable", "java/lang/Iterable", "java/lang/CharSequence",
                  "java/lang/Runnable", "java/lang/AutoCloseable", "java/io/Closeable",
                  "java/util/Collection", "java/util/List", "java/util/Set", "java/util/Map",
                  "java/util/Queue", "java/util/Deque", "java/util/Iterator",
                  "java/util/concurrent/Executor", "java/util/function/Consumer",
                  "java/lang/reflect/Type", "java/lang/annotation/Annotation",
                  "java/util/EventListener", "java/io/Serializable", "java/lang/Cloneable"}

ACC_PUBLIC, ACC_PRIVATE, ACC_PROTECTED, ACC_STATIC, ACC_FINAL = 0x1, 0x2, 0x4, 0x8, 0x10
ACC_SUPER, ACC_SYNCHRONIZED, ACC_VOLATILE, ACC_TRANSIENT, ACC_VARARGS = 0x20, 0x20, 0x40, 0x80, 0x80
ACC_NATIVE, ACC_INTERFACE, ACC_ABSTRACT, ACC_ANNOTATION, ACC_ENUM = 0x100, 0x200, 0x400, 0x2000, 0x4000


# ---------------------------------------------------------------- model

@dataclass
class T:
    """A Java type: kind in prim, cls, tvar, array, wild."""
    kind: str
    name: str = ""            # prim: descriptor letter; cls: internal name; tvar: name; wild: '*', '+', '-'
    args: list = field(default_factory=list)  # cls: type arguments; array/wild: [element/bound]


@dataclass
class Member:
    kind: str                 # field, method, ctor
    name: str
    mods: set
    type: T | None = None     # field type / method return
    params: list = field(default_factory=list)
    tparams: list = field(default_factory=list)   # [(name, [bounds])]
    throws: list = field(default_factory=list)
    varargs: bool = False
    const: object = None
    origin: str = "aosp"


@dataclass
class Cls:
    name: str                 # internal name, e.g. android/app/Notification$Builder
    kind: str                 # class, interface, enum, annotation
    mods: set
    tparams: list = field(default_factory=list)
    sup: T | None = None
    ifaces: list = field(default_factory=list)
    members: list = field(default_factory=list)
    origin: str = "aosp"

    @property
    def outer(self):
        return self.name.rsplit("$", 1)[0] if "$" in self.name else None

    @property
    def simple(self):
        return self.name.rsplit("$", 1)[-1].rsplit("/", 1)[-1]


def internal_name(dotted: str) -> str:
    """android.app.Notification.Builder -> android/app/Notification$Builder (packages are lower case)."""
    parts = dotted.split(".")
    i = 0
    while i < len(parts) - 1 and parts[i][:1].islower():
        i += 1
    return "/".join(parts[:i] + ["$".join(parts[i:])])


# ---------------------------------------------------------------- signature file parser

TOKEN = re.compile(r"""\s*(\.\.\.|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*
                      |-?(?:0x[0-9a-fA-F]+|[0-9][0-9.]*(?:[eE][-+]?[0-9]+)?)[LlFfDd]?|//.*|.)""", re.X)


def strip_annotations(line: str) -> str:
    out, i, n = [], 0, len(line)
    while i < n:
        c = line[i]
        if c in "\"'":
            j = i + 1
            while j < n and line[j] != c:
                j += 2 if line[j] == "\\" else 1
            out.append(line[i:j + 1])
            i = j + 1
        elif c == "@" and not line.startswith("@interface", i):
            j = i + 1
            while j < n and (line[j].isalnum() or line[j] in "._$"):
                j += 1
            k = j
            while k < n and line[k] == " ":
                k += 1
            if k < n and line[k] == "(":
                depth, k2 = 0, k
                while k2 < n:
                    ch = line[k2]
                    if ch in "\"'":
                        k3 = k2 + 1
                        while k3 < n and line[k3] != ch:
                            k3 += 2 if line[k3] == "\\" else 1
                        k2 = k3
                    elif ch == "(":
                        depth += 1
                    elif ch == ")":
                        depth -= 1
                        if depth == 0:
                            break
                    k2 += 1
                j = k2 + 1
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def tokenize(line: str) -> list:
    toks = []
    for m in TOKEN.finditer(line):
        t = m.group(1)
        if t is None or t.startswith("//"):
            break
        toks.append(t)
    return toks


class Parser:
    def __init__(self, toks, scope_lookup):
        self.toks, self.i, self.lookup = toks, 0, scope_lookup

    def peek(self, k=0):
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def next(self):
        t = self.peek()
        self.i += 1
        return t

    def expect(self, t):
        got = self.next()
        if got != t:
            raise ValueError(f"expected {t!r}, got {got!r} in {' '.join(self.toks)}")

    def mods(self):
        mods = set()
        while self.peek() in MODIFIERS:
            mods.add(self.next())
        return mods

    def tparams(self):
        out = []
        if self.peek() != "<":
            return out
        self.next()
        while True:
            name = self.next()
            bounds = []
            if self.peek() == "extends":
                self.next()
                bounds.append(self.type(extra=[name] + [n for n, _ in out]))
                while self.peek() == "&":
                    self.next()
                    bounds.append(self.type(extra=[name]))
            out.append((name, bounds))
            if self.next() == ">":
                return out

    def type(self, extra=()):
        if self.peek() == "?":
            self.next()
            if self.peek() in ("extends", "super"):
                kind = "+" if self.next() == "extends" else "-"
                return T("wild", kind, [self.type(extra)])
            return T("wild", "*")
        name = self.next()
        if name in PRIMS:
            t = T("prim", PRIMS[name])
        elif name in extra or self.lookup(name):
            t = T("tvar", name)
        else:
            dotted = name if "." in name else "java.lang." + name
            t = T("cls", internal_name(dotted))
            if self.peek() == "<":
                self.next()
                while True:
                    t.args.append(self.type(extra))
                    if self.next() == ">":
                        break
                while self.peek() == "." and self.peek(1) not in (None, "."):
                    # Outer<A>.Inner: keep the inner class, drop the outer's arguments.
                    self.next()
                    t = T("cls", t.name + "$" + self.next().replace(".", "$"))
        while self.peek() == "[" and self.peek(1) == "]":
            self.next(), self.next()
            t = T("array", args=[t])
        return t


def parse_literal(tok: str, ty: T):
    if ty.kind == "cls" and ty.name == "java/lang/String":
        if tok.startswith('"'):
            return ast.literal_eval(tok)
        return None
    if ty.kind != "prim":
        return None
    try:
        if ty.name == "Z":
            return ("I", 1 if tok == "true" else 0)
        if ty.name == "C":
            return ("I", ord(ast.literal_eval(tok)) if tok.startswith("'") else int(tok, 0))
        if ty.name in "BSI":
            return ("I", int(tok.rstrip("Ll"), 0))
        if ty.name == "J":
            return ("J", int(tok.rstrip("Ll"), 0))
        if ty.name in "FD":
            t = tok.rstrip("FfDd")
            v = {"NaN": float("nan")}.get(t)
            return (ty.name, float(t) if v is None else v)
    except (ValueError, SyntaxError):
        return None
    return None


def parse_signature_file(path: str, origin: str, classes: dict):
    pkg = None
    cur: Cls | None = None
    scope: list = []
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("//"):
                continue
            try:
                if line.startswith("package "):
                    pkg = line.split()[1]
                    continue
                if line == "}":
                    cur = None
                    continue
                line = strip_annotations(line)
                toks = tokenize(line)
                if cur is None:
                    cur, scope = parse_class_header(toks, pkg, origin, classes)
                    continue
                lookup = lambda n: any(n == p for p, _ in scope)
                p = Parser(toks, lookup)
                kind = p.next()
                if kind == "property":
                    continue
                mods = p.mods()
                if kind in ("field", "enum_constant"):
                    ty = p.type()
                    name = p.next()
                    const = None
                    if p.peek() == "=":
                        p.next()
                        const = parse_literal(p.next(), ty)
                    if kind == "enum_constant":
                        mods |= {"enum", "public", "static", "final"}
                    cur.members.append(Member("field", name, mods, ty, const=const, origin=origin))
                elif kind in ("method", "ctor"):
                    tps = p.tparams()
                    extra = [n for n, _ in tps]
                    if kind == "method":
                        ret = p.type(extra)
                        name = p.next()
                    else:
                        ret, name = T("prim", "V"), "<init>"
                        p.next()
                    p.expect("(")
                    params, varargs = [], False
                    while p.peek() != ")":
                        pt = p.type(extra)
                        if p.peek() == "...":
                            p.next()
                            pt, varargs = T("array", args=[pt]), True
                        if p.peek() not in (",", ")"):
                            p.next()   # parameter name (newer formats)
                        params.append(pt)
                        if p.peek() == ",":
                            p.next()
                    p.next()
                    throws = []
                    if p.peek() == "throws":
                        p.next()
                        while True:
                            throws.append(p.type(extra))
                            if p.peek() != ",":
                                break
                            p.next()
                    cur.members.append(Member(kind, name, mods, ret, params, tps, throws, varargs,
                                              origin=origin))
                else:
                    raise ValueError(f"unknown member kind {kind!r}")
            except Exception as e:  # report and stop: a silent skip would weaken the check
                raise SystemExit(f"{path}:{lineno}: cannot parse: {raw.strip()}\n  {e}")


def parse_class_header(toks, pkg, origin, classes):
    p = Parser(toks, lambda n: False)
    mods = p.mods()
    kw = p.next()
    if kw == "@" and p.peek() == "interface":
        kw = "@" + p.next()
    kind = {"class": "class", "interface": "interface", "enum": "enum", "@interface": "annotation"}[kw]
    name = internal_name(pkg + "." + p.next())
    # Type parameters of enclosing classes are in scope for non-static nested classes.
    scope = []
    outer = name.rsplit("$", 1)[0] if "$" in name else None
    while outer and outer in classes:
        scope += classes[outer].tparams
        outer = outer.rsplit("$", 1)[0] if "$" in outer else None
    p.lookup = lambda n: any(n == q for q, _ in scope)
    tps = p.tparams()
    scope = tps + scope
    p.lookup = lambda n: any(n == q for q, _ in scope)
    sup, ifaces = None, []
    while p.peek() in ("extends", "implements"):
        which = p.next()
        lst = []
        while True:
            lst.append(p.type())
            if p.peek() == ",":
                p.next()
                continue
            # Signature files list several interfaces with spaces, not commas
            # (`class Uri implements java.lang.Comparable<android.net.Uri> android.os.Parcelable {`).
            if which == "implements" and p.peek() not in ("{", "extends", "implements", None):
                continue
            break
        if which == "extends" and kind == "class":
            sup = lst[0]
        else:
            ifaces += lst
    cls = Cls(name, kind, mods, tps, sup, ifaces, origin=origin)
    classes[name] = cls
    return cls, scope


# ---------------------------------------------------------------- chaquopy .pyi supplement

PY_PRIM = {"jboolean": "Z", "jbyte": "B", "jchar": "C", "jshort": "S", "jint": "I", "jlong": "J",
           "jfloat": "F", "jdouble": "D"}
TOP_PACKAGES = ("android", "java", "javax", "dalvik", "org", "androidx", "typing", "builtins")


def dotted(node) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return base + "." + node.attr if base else None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


class PyiReader:
    def __init__(self, pkg: str):
        self.pkg = pkg

    def resolve(self, name: str) -> str:
        if name.split(".")[0] in TOP_PACKAGES:
            return internal_name(name)
        return internal_name(self.pkg + "." + name)

    def alts(self, node):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            return self.alts(node.left) + self.alts(node.right)
        return [node]

    def type(self, node, ret=False) -> T:
        alts = [a for a in self.alts(node) if not (isinstance(a, ast.Constant) and a.value is None)]
        names = [dotted(a) for a in alts]
        for n in names:
            if n and n.startswith("java.j") and n[5:] in PY_PRIM:
                return T("prim", PY_PRIM[n[5:]])
        if not alts:
            return T("prim", "V")
        a, n = alts[0], names[0]
        if n in ("int",):
            return T("prim", "I")
        if n == "bool":
            return T("prim", "Z")
        if n == "float":
            return T("prim", "D")
        if n == "str":
            return T("cls", "java/lang/String")
        if n in ("typing.Any", "object") or (n and n.split(".")[-1].startswith("_")):
            return T("cls", "java/lang/Object")
        if isinstance(a, ast.Subscript):
            base = dotted(a.value)
            if base == "java.chaquopy.JavaArray":
                return T("array", args=[self.type(a.slice)])
            if base in ("typing.ClassVar", "typing.Optional"):
                return self.type(a.slice, ret)
            if not base:
                return T("cls", "java/lang/Object")
            # Keep type arguments only when all are concrete classes (e.g. Iterator<String>);
            # anything with type variables or primitives stays raw (erased).
            elts = a.slice.elts if isinstance(a.slice, ast.Tuple) else [a.slice]
            args = [self.type(e) for e in elts]
            if all(x.kind == "cls" and x.name != "java/lang/Object" and
                   not (dotted(e) or "").split(".")[-1].startswith("_") for x, e in zip(args, elts)):
                return T("cls", self.resolve(base), args)
            return T("cls", self.resolve(base))
        if n:
            return T("cls", self.resolve(n))
        return T("cls", "java/lang/Object")

    def read_class(self, node: ast.ClassDef, prefix: str, out: dict):
        name = self.resolve(prefix + node.name)
        bases = []
        for b in node.bases:
            if isinstance(b, ast.Subscript) and dotted(b.value) == "typing.Generic":
                continue
            d = dotted(b)
            if d and d != "java.lang.Object":
                bases.append(T("cls", self.resolve(d)))
        members = []
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                ann = item.annotation
                static = isinstance(ann, ast.Subscript) and dotted(ann.value) == "typing.ClassVar"
                mods = {"public"} | ({"static", "final"} if static else set())
                members.append(Member("field", item.target.id, mods, self.type(ann), origin="chaquopy"))
            elif isinstance(item, ast.FunctionDef):
                decos = {dotted(d) for d in item.decorator_list}
                args = item.args.posonlyargs + item.args.args
                static = "staticmethod" in decos or not args or args[0].arg != "self"
                if not static:
                    args = args[1:]
                params = [self.type(a.annotation) if a.annotation else T("cls", "java/lang/Object")
                          for a in args]
                if item.args.vararg is not None:
                    params.append(T("array", args=[self.type(item.args.vararg.annotation)]))
                mods = {"public"} | ({"static"} if static and item.name != "__init__" else set())
                if item.name == "__init__":
                    members.append(Member("ctor", "<init>", mods, T("prim", "V"), params, origin="chaquopy"))
                else:
                    ret = self.type(item.returns, ret=True) if item.returns else T("prim", "V")
                    members.append(Member("method", item.name, mods, ret, params,
                                          varargs=item.args.vararg is not None, origin="chaquopy"))
            elif isinstance(item, ast.ClassDef):
                self.read_class(item, prefix + node.name + ".", out)
        out[name] = (bases, members, "$" in name)


# Parts of the chaquopy wheel that Android has and the host JDK lacks (java.*, javax.*,
# org.w3c and org.xml come from the JDK instead).
CHAQUOPY_ROOTS = (("android-stubs", "android"), ("dalvik-stubs", "dalvik"),
                  ("org-stubs/json", "org.json"), ("org-stubs/xmlpull", "org.xmlpull"))


def read_chaquopy(root: str) -> dict:
    out = {}
    for sub, prefix in CHAQUOPY_ROOTS:
        base = os.path.join(root, sub)
        for dirpath, _, files in os.walk(base):
            for fn in files:
                if not fn.endswith(".pyi"):
                    continue
                rel = os.path.relpath(dirpath, base)
                pkg = prefix if rel == "." else prefix + "." + rel.replace(os.sep, ".")
                with open(os.path.join(dirpath, fn), encoding="utf-8") as f:
                    tree = ast.parse(f.read())
                reader = PyiReader(pkg)
                for node in tree.body:
                    if isinstance(node, ast.ClassDef):
                        reader.read_class(node, "", out)
    return out


def merge_chaquopy(classes: dict, chq: dict, stats: dict):
    # Heuristic for types only (2) knows: no constructor and no static method -> interface.
    def guess_kind(members):
        has_ctor = any(m.kind == "ctor" for m in members)
        has_static_m = any(m.kind == "method" and "static" in m.mods for m in members)
        has_inst_m = any(m.kind == "method" and "static" not in m.mods for m in members)
        return "class" if has_ctor or has_static_m or not (has_inst_m or members) else "interface"

    new = {n: guess_kind(m) for n, (_, m, _) in chq.items() if n not in classes}
    for name in sorted(chq, key=lambda n: n.count("$")):
        bases, members, nested = chq[name]
        if name in classes:
            cls = classes[name]
            have_f = {m.name for m in cls.members if m.kind == "field"}
            have_m = {(m.name, len(m.params)) for m in cls.members if m.kind != "field"}
            for m in members:
                if m.kind == "field" and m.name not in have_f:
                    cls.members.append(m)
                    stats["chaquopy_members"] += 1
                elif m.kind != "field" and (m.name, len(m.params)) not in have_m:
                    if cls.kind == "interface" and "static" not in m.mods:
                        m.mods.add("default")   # never abstract: (2) cannot say
                    cls.members.append(m)
                    have_m.add((m.name, len(m.params)))
                    stats["chaquopy_members"] += 1
            continue
        kind = new[name]
        def is_iface(t):
            if t.name in classes:
                return classes[t.name].kind in ("interface", "annotation")
            return new.get(t.name) == "interface" or t.name in JDK_INTERFACES
        sup = next((b for b in bases if not is_iface(b)), None) if kind == "class" else None
        ifaces = [b for b in bases if b is not sup]
        mods = {"public"} | ({"static"} if nested else set())
        for m in members:
            if kind == "interface" and m.kind == "method" and "static" not in m.mods:
                m.mods.add("default")
        classes[name] = Cls(name, kind, mods, [], sup, ifaces, members, origin="chaquopy")
        stats["chaquopy_classes"] += 1


def apply_overrides(classes: dict, path: str, stats: dict):
    tmp = {}
    parse_signature_file(path, "override", tmp)
    for name, ocls in tmp.items():
        cls = classes.get(name)
        if cls is None:
            raise SystemExit(f"{path}: override for unknown class {name}")
        for om in ocls.members:
            idx = [i for i, m in enumerate(cls.members)
                   if m.kind == om.kind and m.name == om.name and len(m.params) == len(om.params)]
            if not idx:
                raise SystemExit(f"{path}: override {name}.{om.name}/{len(om.params)} names no known member")
            for i in reversed(idx):
                del cls.members[i]
            cls.members.append(om)
            stats["overrides"] += 1


# ---------------------------------------------------------------- class file writer

class ConstPool:
    def __init__(self):
        self.items, self.index, self.count = [], {}, 1

    def _add(self, key, data, slots=1):
        if key not in self.index:
            self.index[key] = self.count
            self.items.append(data)
            self.count += slots
        return self.index[key]

    def utf8(self, s: str) -> int:
        b = bytearray()
        for ch in s.encode("utf-16-be", "surrogatepass").decode("utf-16-be", "surrogatepass"):
            c = ord(ch)
            if 0 < c < 0x80:
                b.append(c)
            elif c < 0x800:
                b += bytes([0xC0 | (c >> 6), 0x80 | (c & 0x3F)])
            elif c < 0x10000:
                b += bytes([0xE0 | (c >> 12), 0x80 | ((c >> 6) & 0x3F), 0x80 | (c & 0x3F)])
            else:
                c -= 0x10000
                for u in (0xD800 | (c >> 10), 0xDC00 | (c & 0x3FF)):
                    b += bytes([0xE0 | (u >> 12), 0x80 | ((u >> 6) & 0x3F), 0x80 | (u & 0x3F)])
        return self._add(("u", s), struct.pack(">BH", 1, len(b)) + bytes(b))

    def cls(self, name):
        return self._add(("c", name), struct.pack(">BH", 7, self.utf8(name)))

    def const(self, v):
        if isinstance(v, str):
            return self._add(("s", v), struct.pack(">BH", 8, self.utf8(v)))
        tag, x = v
        if tag == "I":
            return self._add(("I", x), struct.pack(">Bi", 3, ((x + 2**31) % 2**32) - 2**31))
        if tag == "F":
            return self._add(("F", repr(x)), struct.pack(">Bf", 4, x))
        if tag == "J":
            return self._add(("J", x), struct.pack(">Bq", 5, ((x + 2**63) % 2**64) - 2**63), 2)
        return self._add(("D", repr(x)), struct.pack(">Bd", 6, x), 2)

    def bytes(self):
        return struct.pack(">H", self.count) + b"".join(self.items)


class Emitter:
    def __init__(self, classes: dict):
        self.classes = classes

    def tvar_erasure(self, name, scopes):
        for sc in scopes:
            for n, bounds in sc:
                if n == name:
                    return self.desc(bounds[0], scopes) if bounds else "Ljava/lang/Object;"
        return "Ljava/lang/Object;"

    def desc(self, t: T, scopes) -> str:
        if t.kind == "prim":
            return t.name
        if t.kind == "cls":
            return "L" + t.name + ";"
        if t.kind == "array":
            return "[" + self.desc(t.args[0], scopes)
        if t.kind == "tvar":
            return self.tvar_erasure(t.name, scopes)
        return "Ljava/lang/Object;"

    def sig(self, t: T) -> str:
        if t.kind == "prim":
            return t.name
        if t.kind == "cls":
            a = "<" + "".join(self.sig(x) for x in t.args) + ">" if t.args else ""
            return "L" + t.name + a + ";"
        if t.kind == "array":
            return "[" + self.sig(t.args[0])
        if t.kind == "tvar":
            return "T" + t.name + ";"
        if t.name == "*":
            return "*"
        return t.name + self.sig(t.args[0])

    def generic(self, t: T) -> bool:
        if t is None:
            return False
        return t.kind == "tvar" or t.kind == "wild" or (t.kind == "cls" and bool(t.args)) or \
            (t.kind == "array" and self.generic(t.args[0]))

    def is_iface(self, t: T) -> bool:
        c = self.classes.get(t.name)
        return c.kind in ("interface", "annotation") if c else t.name in JDK_INTERFACES

    def tparams_sig(self, tps) -> str:
        if not tps:
            return ""
        out = "<"
        for n, bounds in tps:
            out += n
            if not bounds:
                out += ":Ljava/lang/Object;"
            for i, b in enumerate(bounds):
                out += (("::" if i == 0 else ":") if b.kind == "cls" and self.is_iface(b) else ":") + self.sig(b)
        return out + ">"

    def scopes_of(self, cls: Cls):
        scopes, c = [cls.tparams], cls
        while c.outer and c.outer in self.classes and "static" not in c.mods and c.kind == "class":
            c = self.classes[c.outer]
            scopes.append(c.tparams)
        return scopes

    def write(self, cls: Cls) -> bytes:
        cp = ConstPool()
        scopes = self.scopes_of(cls)
        flags = ACC_PUBLIC if cls.mods & {"public", "protected"} else 0
        sup = cls.sup
        ifaces = list(cls.ifaces)
        if cls.kind == "interface":
            flags |= ACC_INTERFACE | ACC_ABSTRACT
            sup = T("cls", "java/lang/Object")
        elif cls.kind == "annotation":
            flags |= ACC_INTERFACE | ACC_ABSTRACT | ACC_ANNOTATION
            sup = T("cls", "java/lang/Object")
            ifaces = [T("cls", "java/lang/annotation/Annotation")]
        elif cls.kind == "enum":
            flags |= ACC_SUPER | ACC_ENUM | ACC_FINAL
            sup = T("cls", "java/lang/Enum", [T("cls", cls.name)])
        else:
            flags |= ACC_SUPER
            if "final" in cls.mods:
                flags |= ACC_FINAL
            if "abstract" in cls.mods:
                flags |= ACC_ABSTRACT
        sup = sup or T("cls", "java/lang/Object")
        this_i, super_i = cp.cls(cls.name), cp.cls(sup.name)
        iface_is = [cp.cls(i.name) for i in ifaces]

        fields = []
        for m in (m for m in cls.members if m.kind == "field"):
            f = acc(m.mods)
            if cls.kind in ("interface", "annotation"):
                f |= ACC_PUBLIC | ACC_STATIC | ACC_FINAL
            if "enum" in m.mods:
                f |= ACC_ENUM
            attrs = []
            if self.generic(m.type):
                attrs.append(attr(cp, "Signature", struct.pack(">H", cp.utf8(self.sig(m.type)))))
            if m.const is not None and f & ACC_STATIC and f & ACC_FINAL:
                attrs.append(attr(cp, "ConstantValue", struct.pack(">H", cp.const(m.const))))
            fields.append(struct.pack(">HHHH", f, cp.utf8(m.name), cp.utf8(self.desc(m.type, scopes)),
                                      len(attrs)) + b"".join(attrs))

        methods, seen = [], set()
        members = [m for m in cls.members if m.kind != "field"]
        if cls.kind == "enum":
            names = {m.name for m in members}
            if "values" not in names:
                members.append(Member("method", "values", {"public", "static"},
                                      T("array", args=[T("cls", cls.name)])))
            if "valueOf" not in names:
                members.append(Member("method", "valueOf", {"public", "static"}, T("cls", cls.name),
                                      [T("cls", "java/lang/String")]))
        inner_nonstatic = cls.kind == "class" and cls.outer and "static" not in cls.mods \
            and cls.outer in self.classes and self.classes[cls.outer].kind == "class"
        for m in members:
            msc = [m.tparams] + scopes
            params = list(m.params)
            if m.kind == "ctor" and inner_nonstatic:
                params = [T("cls", cls.outer)] + params
            d = "(" + "".join(self.desc(p, msc) for p in params) + ")" + self.desc(m.type, msc)
            if (m.name, d) in seen:
                continue
            seen.add((m.name, d))
            f = acc(m.mods)
            if cls.kind in ("interface", "annotation"):
                f |= ACC_PUBLIC
                if "static" not in m.mods and "default" not in m.mods:
                    f |= ACC_ABSTRACT
            if m.varargs:
                f |= ACC_VARARGS
            attrs = []
            if m.tparams or any(self.generic(p) for p in m.params) or self.generic(m.type) \
                    or any(self.generic(x) for x in m.throws):
                if not (m.kind == "ctor" and inner_nonstatic):
                    s = self.tparams_sig(m.tparams) + "(" + "".join(self.sig(p) for p in m.params) + ")" + \
                        self.sig(m.type) + "".join("^" + self.sig(x) for x in m.throws if x.kind == "tvar")
                    attrs.append(attr(cp, "Signature", struct.pack(">H", cp.utf8(s))))
            exc = [x for x in m.throws if x.kind == "cls"]
            if exc:
                attrs.append(attr(cp, "Exceptions", struct.pack(">H", len(exc)) +
                                  b"".join(struct.pack(">H", cp.cls(x.name)) for x in exc)))
            methods.append(struct.pack(">HHHH", f, cp.utf8(m.name), cp.utf8(d), len(attrs)) + b"".join(attrs))

        cattrs = []
        if cls.tparams or self.generic(sup) or any(self.generic(i) for i in ifaces):
            s = self.tparams_sig(cls.tparams) + self.sig(sup) + "".join(self.sig(i) for i in ifaces)
            cattrs.append(attr(cp, "Signature", struct.pack(">H", cp.utf8(s))))
        inner = []
        if cls.outer:
            inner.append(cls)
        prefix = cls.name + "$"
        inner += [c for n, c in self.classes.items() if n.startswith(prefix) and "$" not in n[len(prefix):]]
        if inner:
            body = struct.pack(">H", len(inner))
            for c in inner:
                f = acc(c.mods) & (ACC_PUBLIC | ACC_PROTECTED | ACC_STATIC | ACC_FINAL | ACC_ABSTRACT)
                if c.kind in ("interface", "annotation"):
                    f |= ACC_INTERFACE | ACC_ABSTRACT | ACC_STATIC
                if c.kind == "annotation":
                    f |= ACC_ANNOTATION
                if c.kind == "enum":
                    f |= ACC_ENUM | ACC_STATIC | ACC_FINAL
                body += struct.pack(">HHHH", cp.cls(c.name), cp.cls(c.outer), cp.utf8(c.simple), f)
            cattrs.append(attr(cp, "InnerClasses", body))

        out = struct.pack(">IHH", 0xCAFEBABE, 0, 52)
        tail = struct.pack(">HHHH", flags, this_i, super_i, len(iface_is)) + \
            b"".join(struct.pack(">H", i) for i in iface_is) + \
            struct.pack(">H", len(fields)) + b"".join(fields) + \
            struct.pack(">H", len(methods)) + b"".join(methods) + \
            struct.pack(">H", len(cattrs)) + b"".join(cattrs)
        return out + cp.bytes() + tail


def acc(mods: set) -> int:
    f = 0
    for m, bit in (("public", ACC_PUBLIC), ("protected", ACC_PROTECTED), ("private", ACC_PRIVATE),
                   ("static", ACC_STATIC), ("final", ACC_FINAL), ("abstract", ACC_ABSTRACT),
                   ("synchronized", ACC_SYNCHRONIZED), ("native", ACC_NATIVE),
                   ("volatile", ACC_VOLATILE), ("transient", ACC_TRANSIENT)):
        if m in mods:
            f |= bit
    return f


def attr(cp: ConstPool, name: str, body: bytes) -> bytes:
    return struct.pack(">HI", cp.utf8(name), len(body)) + body


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--api", action="append", required=True, help="AOSP signature file (repeatable)")
    ap.add_argument("--chaquopy", help="unpacked chaquopy-stubs-android wheel")
    ap.add_argument("--overrides", help="signature-format overrides for lossy chaquopy members")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    classes: dict = {}
    for path in a.api:
        parse_signature_file(path, "aosp", classes)
    classes = {n: c for n, c in classes.items() if not n.startswith(("java/", "javax/"))}
    stats = {"aosp_classes": len(classes), "chaquopy_classes": 0, "chaquopy_members": 0, "overrides": 0}
    stats["aosp_members"] = sum(len(c.members) for c in classes.values())
    if a.chaquopy:
        merge_chaquopy(classes, read_chaquopy(a.chaquopy), stats)
    if a.overrides:
        apply_overrides(classes, a.overrides, stats)
    # A nested class whose outer class is unknown cannot be found by javac: drop it loudly.
    orphans = [n for n, c in classes.items() if c.outer and c.outer not in classes]
    for n in orphans:
        del classes[n]
    em = Emitter(classes)
    tmp = a.out + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(classes):
            z.writestr(name + ".class", em.write(classes[name]))
    os.replace(tmp, a.out)
    stats["classes_written"] = len(classes)
    stats["orphans_dropped"] = len(orphans)
    print("android stubs: " + ", ".join(f"{k}={v}" for k, v in stats.items()))


if __name__ == "__main__":
    main()
