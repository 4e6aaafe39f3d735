#include "ckpt/torch_pickle.h"

#include <caffe2/serialize/inline_container.h>

#include <cstring>

#include "core/error.h"

namespace herd::ckpt {
namespace {

using Kind = PyValue::Kind;

PyRef make(Kind k) {
  auto v = std::make_shared<PyValue>();
  v->kind = k;
  return v;
}
PyRef make_int(int64_t i) {
  auto v = make(Kind::Int);
  v->i = i;
  return v;
}
PyRef make_str(Kind k, std::string s) {
  auto v = make(k);
  v->s = std::move(s);
  return v;
}

// torch.save's storage classes (the legacy typed names it still writes) -> dtype.
torch::Dtype storage_dtype(const std::string& name, const std::string& where) {
  static const std::map<std::string, torch::Dtype> types = {
      {"torch.FloatStorage", torch::kFloat32},
      {"torch.DoubleStorage", torch::kFloat64},
      {"torch.HalfStorage", torch::kFloat16},
      {"torch.BFloat16Storage", torch::kBFloat16},
      {"torch.LongStorage", torch::kInt64},
      {"torch.IntStorage", torch::kInt32},
      {"torch.ShortStorage", torch::kInt16},
      {"torch.CharStorage", torch::kInt8},
      {"torch.ByteStorage", torch::kUInt8},
      {"torch.BoolStorage", torch::kBool},
      {"torch.ComplexFloatStorage", torch::kComplexFloat},
      {"torch.ComplexDoubleStorage", torch::kComplexDouble}};
  auto it = types.find(name);
  HERD_CHECK(it != types.end(), where, ": unsupported storage type ", name);
  return it->second;
}

class Unpickler {
 public:
  Unpickler(caffe2::serialize::PyTorchStreamReader& zip, const char* data, size_t size,
            std::string where)
      : zip_(zip), p_(data), end_(data + size), where_(std::move(where)) {}

  PyRef run() {
    for (;;) {
      const uint8_t op = byte();
      if (op == '.') break;
      step(op);
    }
    HERD_CHECK(!stack_.empty(), where_, ": empty pickle");
    return stack_.back();
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(str(where_, ": unreadable pickle (", what, ")"));
  }
  void need(size_t n) const {
    if (static_cast<size_t>(end_ - p_) < n) fail("truncated");
  }
  uint8_t byte() {
    need(1);
    return static_cast<uint8_t>(*p_++);
  }
  uint64_t uint_le(int n) {
    need(n);
    uint64_t v = 0;
    for (int k = 0; k < n; ++k) v |= static_cast<uint64_t>(static_cast<uint8_t>(p_[k])) << (8 * k);
    p_ += n;
    return v;
  }
  std::string bytes(size_t n) {
    need(n);
    std::string s(p_, n);
    p_ += n;
    return s;
  }
  std::string line() {
    const char* nl = static_cast<const char*>(std::memchr(p_, '\n', end_ - p_));
    if (!nl) fail("unterminated line");
    std::string s(p_, nl);
    p_ = nl + 1;
    return s;
  }
  PyRef pop() {
    if (stack_.empty()) fail("stack underflow");
    auto v = stack_.back();
    stack_.pop_back();
    return v;
  }
  // Everything above the last MARK, which is removed.
  std::vector<PyRef> pop_mark() {
    if (marks_.empty()) fail("no MARK");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<PyRef> out(stack_.begin() + m, stack_.end());
    stack_.resize(m);
    return out;
  }
  PyRef& top() {
    if (stack_.empty()) fail("stack underflow");
    return stack_.back();
  }
  void set_items(PyRef& d, const std::vector<PyRef>& kv) {
    if (d->kind == Kind::Object) return;  // a foreign mapping: its items are not needed
    if (d->kind != Kind::Dict) fail("SETITEM on a non-dict");
    for (size_t k = 0; k + 1 < kv.size(); k += 2) d->dict.emplace_back(kv[k], kv[k + 1]);
  }
  void append(PyRef& l, const std::vector<PyRef>& items) {
    if (l->kind == Kind::Object) return;
    if (l->kind != Kind::List) fail("APPEND on a non-list");
    l->items.insert(l->items.end(), items.begin(), items.end());
  }
  void memo_put(uint64_t k) { memo_[k] = top(); }
  PyRef memo_get(uint64_t k) {
    auto it = memo_.find(k);
    if (it == memo_.end()) fail("memo key missing");
    return it->second;
  }

  // BINPERSID ('storage', type, key, location, numel): one storage record, read once.
  PyRef storage(const PyRef& pid) {
    if (pid->kind != Kind::Tuple || pid->items.size() < 5) fail("unknown persistent id");
    const std::string key = pid->items[2]->kind == Kind::Str ? pid->items[2]->s : "";
    auto it = storages_.find(key);
    if (it != storages_.end()) return it->second;
    const auto dtype = storage_dtype(pid->items[1]->s, where_);
    const int64_t numel = pid->items[4]->i;
    auto t = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
    const std::string record = "data/" + key;
    HERD_CHECK(zip_.hasRecord(record), where_, ": missing storage record ", record);
    auto [ptr, size] = zip_.getRecord(record);
    HERD_CHECK(size == static_cast<size_t>(t.nbytes()), where_, ": storage ", key, " holds ", size,
               " bytes, expected ", t.nbytes());
    std::memcpy(t.data_ptr(), ptr.get(), size);
    auto v = make(Kind::Tensor);
    v->tensor = t;
    storages_[key] = v;
    return v;
  }

  std::vector<int64_t> ints(const PyRef& t) {
    std::vector<int64_t> out;
    for (const auto& e : t->items) out.push_back(e->i);
    return out;
  }

  // REDUCE of a global on a tuple of arguments.
  PyRef reduce(const PyRef& fn, const PyRef& args) {
    const std::string& name = fn->s;
    if (fn->kind == Kind::Global) {
      if (name == "collections.OrderedDict" || name == "builtins.dict") return make(Kind::Dict);
      if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
        // (storage, storage_offset, size, stride, ...): a view, copied out contiguous.
        if (args->items.size() < 4 || args->items[0]->kind != Kind::Tensor)
          fail("bad _rebuild_tensor arguments");
        const auto& flat = args->items[0]->tensor;
        auto size = ints(args->items[2]);
        auto stride = ints(args->items[3]);
        const int64_t offset = args->items[1]->i;
        int64_t last = offset;
        for (size_t d = 0; d < size.size(); ++d)
          if (size[d] > 0) last += (size[d] - 1) * stride[d];
        bool empty = false;
        for (auto s : size) empty = empty || s == 0;
        HERD_CHECK(empty || last < flat.numel(), where_, ": tensor view past its storage (offset ",
                   offset, ", sizes ", c10::IntArrayRef(size), ", strides ",
                   c10::IntArrayRef(stride), ", storage ", flat.numel(), ")");
        auto v = make(Kind::Tensor);
        v->tensor = empty ? torch::empty(size, flat.options())
                          : flat.as_strided(size, stride, offset).clone();
        return v;
      }
      if (name == "torch._utils._rebuild_parameter" ||
          name == "torch._utils._rebuild_parameter_with_state") {
        if (args->items.empty() || args->items[0]->kind != Kind::Tensor)
          fail("bad _rebuild_parameter arguments");
        return args->items[0];
      }
    }
    auto obj = make_str(Kind::Object, name);
    obj->items = args->items;
    return obj;
  }

  void step(uint8_t op) {
    switch (op) {
      case 0x80:
        byte();
        break;  // PROTO
      case 0x95:
        uint_le(8);
        break;  // FRAME
      case '(':
        marks_.push_back(stack_.size());
        break;
      case '}':
        stack_.push_back(make(Kind::Dict));
        break;
      case ']':
        stack_.push_back(make(Kind::List));
        break;
      case ')':
        stack_.push_back(make(Kind::Tuple));
        break;
      case 'N':
        stack_.push_back(make(Kind::None));
        break;
      case 0x88:
      case 0x89: {
        auto v = make(Kind::Bool);
        v->b = op == 0x88;
        stack_.push_back(v);
        break;
      }
      case 'J':
        stack_.push_back(make_int(static_cast<int32_t>(uint_le(4))));
        break;
      case 'K':
        stack_.push_back(make_int(static_cast<int64_t>(uint_le(1))));
        break;
      case 'M':
        stack_.push_back(make_int(static_cast<int64_t>(uint_le(2))));
        break;
      case 0x8a:
      case 0x8b: {  // LONG1 / LONG4: little-endian two's complement
        const size_t n = op == 0x8a ? uint_le(1) : uint_le(4);
        if (n > 8) fail("integer wider than 64 bits");
        const std::string b = bytes(n);
        uint64_t v = 0;
        for (size_t k = 0; k < n; ++k)
          v |= static_cast<uint64_t>(static_cast<uint8_t>(b[k])) << (8 * k);
        if (n > 0 && n < 8 && (static_cast<uint8_t>(b[n - 1]) & 0x80)) v |= ~uint64_t{0} << (8 * n);
        stack_.push_back(make_int(static_cast<int64_t>(v)));
        break;
      }
      case 'I': {  // INT (protocol 0), also "01"/"00" booleans
        const std::string l = line();
        if (l == "01" || l == "00") {
          auto v = make(Kind::Bool);
          v->b = l == "01";
          stack_.push_back(v);
        } else {
          stack_.push_back(make_int(std::stoll(l)));
        }
        break;
      }
      case 'G': {  // BINFLOAT, big-endian
        need(8);
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | static_cast<uint8_t>(p_[k]);
        p_ += 8;
        auto v = make(Kind::Float);
        std::memcpy(&v->f, &bits, 8);
        stack_.push_back(v);
        break;
      }
      case 'X':
        stack_.push_back(make_str(Kind::Str, bytes(uint_le(4))));
        break;
      case 0x8c:
        stack_.push_back(make_str(Kind::Str, bytes(uint_le(1))));
        break;
      case 0x8d:
        stack_.push_back(make_str(Kind::Str, bytes(uint_le(8))));
        break;
      case 'T':
        stack_.push_back(make_str(Kind::Str, bytes(uint_le(4))));
        break;
      case 'U':
        stack_.push_back(make_str(Kind::Str, bytes(uint_le(1))));
        break;
      case 'B':
        stack_.push_back(make_str(Kind::Bytes, bytes(uint_le(4))));
        break;
      case 'C':
        stack_.push_back(make_str(Kind::Bytes, bytes(uint_le(1))));
        break;
      case 0x8e:
        stack_.push_back(make_str(Kind::Bytes, bytes(uint_le(8))));
        break;
      case 't': {
        auto v = make(Kind::Tuple);
        v->items = pop_mark();
        stack_.push_back(v);
        break;
      }
      case 0x85:
      case 0x86:
      case 0x87: {
        auto v = make(Kind::Tuple);
        const int n = op - 0x84;
        if (stack_.size() < static_cast<size_t>(n)) fail("stack underflow");
        v->items.assign(stack_.end() - n, stack_.end());
        stack_.resize(stack_.size() - n);
        stack_.push_back(v);
        break;
      }
      case 'l': {  // LIST (protocol 0/1)
        auto v = make(Kind::List);
        v->items = pop_mark();
        stack_.push_back(v);
        break;
      }
      case 'd': {  // DICT
        auto v = make(Kind::Dict);
        set_items(v, pop_mark());
        stack_.push_back(v);
        break;
      }
      case 's': {
        auto value = pop();
        auto key = pop();
        set_items(top(), {key, value});
        break;
      }
      case 'u': {
        auto kv = pop_mark();
        set_items(top(), kv);
        break;
      }
      case 'a': {
        auto v = pop();
        append(top(), {v});
        break;
      }
      case 'e': {
        auto items = pop_mark();
        append(top(), items);
        break;
      }
      case 0x8f:
        stack_.push_back(make(Kind::List));
        break;      // EMPTY_SET, as a list
      case 0x90: {  // ADDITEMS
        auto items = pop_mark();
        append(top(), items);
        break;
      }
      case 0x91: {  // FROZENSET
        auto v = make(Kind::List);
        v->items = pop_mark();
        stack_.push_back(v);
        break;
      }
      case 'c': {
        std::string module = line();
        std::string name = line();
        stack_.push_back(make_str(Kind::Global, module + "." + name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        auto name = pop();
        auto module = pop();
        stack_.push_back(make_str(Kind::Global, module->s + "." + name->s));
        break;
      }
      case 'R': {
        auto args = pop();
        auto fn = pop();
        stack_.push_back(reduce(fn, args));
        break;
      }
      case 0x81: {  // NEWOBJ cls args
        auto args = pop();
        auto cls = pop();
        stack_.push_back(reduce(cls, args));
        break;
      }
      case 0x92: {  // NEWOBJ_EX cls args kwargs
        pop();
        auto args = pop();
        auto cls = pop();
        stack_.push_back(reduce(cls, args));
        break;
      }
      case 'b': {  // BUILD: state for the object below; plain dicts ignore it (_metadata)
        auto state = pop();
        if (top()->kind == Kind::Object) top()->state = state;
        break;
      }
      case 'Q':
        stack_.push_back(storage(pop()));
        break;  // BINPERSID
      case 'q':
        memo_put(uint_le(1));
        break;
      case 'r':
        memo_put(uint_le(4));
        break;
      case 0x94:
        memo_put(memo_.size());
        break;  // MEMOIZE
      case 'p':
        memo_put(std::stoull(line()));
        break;
      case 'h':
        stack_.push_back(memo_get(uint_le(1)));
        break;
      case 'j':
        stack_.push_back(memo_get(uint_le(4)));
        break;
      case 'g':
        stack_.push_back(memo_get(std::stoull(line())));
        break;
      case '0':
        pop();
        break;  // POP
      case '2':
        stack_.push_back(top());
        break;  // DUP
      case '1':
        pop_mark();
        break;  // POP_MARK
      default:
        fail(str("opcode 0x", std::hex, static_cast<int>(op)));
    }
  }

  caffe2::serialize::PyTorchStreamReader& zip_;
  const char* p_;
  const char* end_;
  std::string where_;
  std::vector<PyRef> stack_;
  std::vector<size_t> marks_;
  std::map<uint64_t, PyRef> memo_;
  std::map<std::string, PyRef> storages_;
};

}  // namespace

PyRef PyValue::get(const std::string& key) const {
  for (const auto& [k, v] : dict)
    if (k->kind == Kind::Str && k->s == key) return v;
  return nullptr;
}

bool PyValue::is_str_dict() const {
  if (kind != Kind::Dict) return false;
  for (const auto& kv : dict)
    if (kv.first->kind != Kind::Str) return false;
  return true;
}

PyRef read_torch_file(const std::string& path) {
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> zip;
  try {
    zip = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const c10::Error&) {
    throw Error(str(path,
                    ": not a torch.save zip file (legacy pre-1.6 torch files are not read; "
                    "re-save with torch.save or convert to .safetensors)"));
  }
  HERD_CHECK(zip->hasRecord("data.pkl"), path, ": torch zip file without data.pkl");
  auto [ptr, size] = zip->getRecord("data.pkl");
  Unpickler u(*zip, static_cast<const char*>(ptr.get()), size, path);
  return u.run();
}

std::map<std::string, torch::Tensor> tensors_of(const PyRef& v, const std::string& where) {
  HERD_CHECK(v && v->kind == Kind::Dict, where, ": expected a dict of tensors");
  std::map<std::string, torch::Tensor> out;
  for (const auto& [k, t] : v->dict)
    if (k->kind == Kind::Str && t->kind == Kind::Tensor) out[k->s] = t->tensor;
  return out;
}

YAML::Node to_yaml_node(const PyRef& v) {
  YAML::Node n;
  if (!v) return n;
  switch (v->kind) {
    case Kind::Bool:
      n = v->b;
      break;
    case Kind::Int:
      n = v->i;
      break;
    case Kind::Float:
      n = v->f;
      break;
    case Kind::Str:
      n = v->s;
      break;
    case Kind::List:
    case Kind::Tuple:
      n = YAML::Node(YAML::NodeType::Sequence);
      for (const auto& e : v->items) n.push_back(to_yaml_node(e));
      break;
    case Kind::Dict:
      n = YAML::Node(YAML::NodeType::Map);
      for (const auto& [k, e] : v->dict)
        if (k->kind == Kind::Str) n[k->s] = to_yaml_node(e);
      break;
    case Kind::Object: {
      // omegaconf nodes keep their value in the state's `_content` (containers) or `_val`.
      const PyRef s = v->state;
      if (s && s->kind == Kind::Dict) {
        if (auto c = s->get("_content")) return to_yaml_node(c);
        if (auto c = s->get("_val")) return to_yaml_node(c);
        return to_yaml_node(s);
      }
      if (s && s->kind == Kind::Tuple) {  // (dict state, slot state)
        for (const auto& e : s->items)
          if (e->kind == Kind::Dict) return to_yaml_node(e);
      }
      break;
    }
    default:
      break;
  }
  return n;
}

}  // namespace herd::ckpt
