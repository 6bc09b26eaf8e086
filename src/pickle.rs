//! Just enough of Python's pickle to read CIFAR's python releases and PyTorch's saved state dicts:
//! the opcodes of protocols 0–5 that plain containers, numbers, strings, numpy arrays (`_reconstruct`
//! and `_frombuffer`) and `torch.save`'s tensors use. Globals are never called: a `REDUCE` becomes an
//! inert [`Value::Object`] that the reader inspects (only `collections.OrderedDict()` is read as the
//! empty dict it makes), and a persistent id (`torch.save`'s reference to a storage stored beside the
//! pickle) stays a [`Value::Persistent`] for the reader to resolve. Used by `data` (CIFAR) and `model`
//! (state dicts), so it imports nothing of kd-sweep.

use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String, String),
    Object {
        callable: Box<Value>,
        args: Box<Value>,
        state: Option<Box<Value>>,
    },
    /// A persistent id (`BINPERSID`/`PERSID`): what the pickler's `persistent_id` returned, left for
    /// the reader to resolve (for `torch.save`, `('storage', type, key, location, numel)`).
    Persistent(Box<Value>),
    Mark,
}

impl Value {
    /// `d[key]` for a dict whose keys are str or bytes.
    pub fn dict_get(&self, key: &str) -> Option<&Value> {
        let Value::Dict(items) = self else {
            return None;
        };
        items.iter().find_map(|(k, v)| match k {
            Value::Str(s) if s == key => Some(v),
            Value::Bytes(b) if b == key.as_bytes() => Some(v),
            _ => None,
        })
    }

    /// The (key, value) pairs of a dict (an `OrderedDict` included).
    pub fn dict_items(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Dict(items) => Some(items),
            _ => None,
        }
    }

    pub fn int_list(&self) -> Option<Vec<i64>> {
        let (Value::List(xs) | Value::Tuple(xs)) = self else {
            return None;
        };
        xs.iter()
            .map(|x| {
                if let Value::Int(i) = x {
                    Some(*i)
                } else {
                    None
                }
            })
            .collect()
    }

    fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    fn dtype_is_u8(&self) -> bool {
        match self {
            Value::Object { args, .. } => match args.as_ref() {
                Value::Tuple(a) => {
                    matches!(a.first(), Some(Value::Str(s)) if s == "u1" || s == "uint8")
                        || matches!(a.first(), Some(Value::Bytes(b)) if b == b"u1")
                }
                _ => false,
            },
            _ => false,
        }
    }

    /// The shape and bytes of a pickled numpy uint8 array.
    pub fn ndarray_u8(&self) -> Option<(Vec<usize>, Vec<u8>)> {
        let Value::Object {
            callable,
            args,
            state,
        } = self
        else {
            return None;
        };
        let Value::Global(_, func) = callable.as_ref() else {
            return None;
        };
        let shape_of = |v: &Value| {
            v.int_list()
                .map(|s| s.into_iter().map(|d| d.max(0) as usize).collect::<Vec<_>>())
        };
        match func.as_str() {
            // ndarray.__reduce__: _reconstruct(ndarray, (0,), b'b'), then state (ver, shape, dtype, fortran, data)
            "_reconstruct" => {
                let Some(Value::Tuple(st)) = state.as_deref() else {
                    return None;
                };
                let [_, shape, dtype, _, data] = st.as_slice() else {
                    return None;
                };
                if !dtype.dtype_is_u8() {
                    return None;
                }
                let bytes = match data {
                    Value::Bytes(b) => b.clone(),
                    // Python 2 str read as text: latin-1 maps each byte to one char
                    Value::Str(s) => s.chars().map(|c| c as u32 as u8).collect(),
                    _ => return None,
                };
                Some((shape_of(shape)?, bytes))
            }
            // protocol 5: _frombuffer(buffer, dtype, shape, order)
            "_frombuffer" => {
                let Value::Tuple(a) = args.as_ref() else {
                    return None;
                };
                let [buf, dtype, shape, _] = a.as_slice() else {
                    return None;
                };
                if !dtype.dtype_is_u8() {
                    return None;
                }
                Some((shape_of(shape)?, buf.as_bytes()?.to_vec()))
            }
            _ => None,
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or("unexpected end of data")?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn le(&mut self, n: usize) -> Result<u64, String> {
        let mut v = 0u64;
        for (i, &x) in self.take(n)?.iter().enumerate() {
            v |= (x as u64) << (8 * i);
        }
        Ok(v)
    }
    fn len(&mut self, n: usize) -> Result<usize, String> {
        let v = self.le(n)?;
        if v > (self.b.len() - self.pos) as u64 {
            return Err(format!("length {v} runs past the end of the data"));
        }
        Ok(v as usize)
    }
    fn line(&mut self) -> Result<&'a str, String> {
        let rest = &self.b[self.pos..];
        let n = rest
            .iter()
            .position(|&c| c == b'\n')
            .ok_or("unterminated text line")?;
        self.pos += n + 1;
        std::str::from_utf8(&rest[..n]).map_err(|_| "non-UTF-8 text line".to_string())
    }
}

fn utf8(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "invalid UTF-8 in a string".to_string())
}

/// A `REDUCE`: kept inert, except the one call Python 3 uses to write `bytes` at protocol 2,
/// `_codecs.encode(text, 'latin1')`, which is decoded back to the bytes, and `OrderedDict()` (a state
/// dict, filled by the `SETITEMS` that follow), which is the empty dict it makes.
fn reduce(callable: Value, args: Value) -> Value {
    if let (Value::Global(m, f), Value::Tuple(a)) = (&callable, &args) {
        if m == "collections" && f == "OrderedDict" && a.is_empty() {
            return Value::Dict(Vec::new());
        }
        if m == "_codecs" && f == "encode" {
            if let [Value::Str(text), Value::Str(enc)] = a.as_slice() {
                if enc == "latin1" || enc == "latin-1" {
                    return Value::Bytes(text.chars().map(|c| c as u32 as u8).collect());
                }
            }
        }
    }
    Value::Object {
        callable: Box::new(callable),
        args: Box::new(args),
        state: None,
    }
}

/// Unpickles `bytes` into an inert value tree.
pub fn load(bytes: &[u8]) -> Result<Value, String> {
    let mut r = Reader { b: bytes, pos: 0 };
    let mut m = Machine {
        stack: Vec::new(),
        memo: HashMap::new(),
    };
    loop {
        let op = r.u8()?;
        if op == b'.' {
            return m.pop();
        }
        match literal(op, &mut r)? {
            Some(v) => m.stack.push(v),
            None => m.apply(op, &mut r)?,
        }
    }
}

/// The value an opcode that pushes one new value pushes, read from the stream; `None` when `op`
/// works on the stack instead.
fn literal(op: u8, r: &mut Reader) -> Result<Option<Value>, String> {
    let bytes = |r: &mut Reader, n: usize| -> Result<Value, String> {
        let n = r.len(n)?;
        Ok(Value::Bytes(r.take(n)?.to_vec()))
    };
    let text = |r: &mut Reader, n: usize| -> Result<Value, String> {
        let n = r.len(n)?;
        Ok(Value::Str(utf8(r.take(n)?)?))
    };
    Ok(Some(match op {
        b'(' => Value::Mark,
        b'}' => Value::Dict(Vec::new()),
        b']' => Value::List(Vec::new()),
        b')' => Value::Tuple(Vec::new()),
        b'N' => Value::None,
        0x88 => Value::Bool(true),
        0x89 => Value::Bool(false),
        b'J' => Value::Int(r.le(4)? as u32 as i32 as i64),
        b'K' => Value::Int(r.le(1)? as i64),
        b'M' => Value::Int(r.le(2)? as i64),
        0x8a => long1(r)?,
        b'I' | b'L' => match r.line()?.trim_end_matches('L') {
            "01" => Value::Bool(true),
            "00" => Value::Bool(false),
            t => Value::Int(t.parse().map_err(|_| format!("bad integer {t:?}"))?),
        },
        b'G' => {
            let mut a = [0u8; 8];
            a.copy_from_slice(r.take(8)?);
            Value::Float(f64::from_be_bytes(a))
        }
        b'T' | b'B' => bytes(r, 4)?,
        b'U' | b'C' => bytes(r, 1)?,
        0x8e | 0x96 => bytes(r, 8)?,
        b'X' => text(r, 4)?,
        0x8c => text(r, 1)?,
        0x8d => text(r, 8)?,
        b'c' => {
            let module = r.line()?.to_string();
            Value::Global(module, r.line()?.to_string())
        }
        b'P' => Value::Persistent(Box::new(Value::Str(r.line()?.to_string()))),
        _ => return Ok(None),
    }))
}

/// `LONG1`: a little-endian two's-complement integer of a given number of bytes (at most 8 here).
fn long1(r: &mut Reader) -> Result<Value, String> {
    let n = r.u8()? as usize;
    let b = r.take(n)?;
    if n > 8 {
        return Err("integer too large".into());
    }
    let mut v: i64 = 0;
    for (i, &x) in b.iter().enumerate() {
        v |= (x as i64) << (8 * i);
    }
    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
        v -= 1i64 << (8 * n);
    }
    Ok(Value::Int(v))
}

/// The unpickler's stack and memo.
struct Machine {
    stack: Vec<Value>,
    memo: HashMap<u64, Value>,
}

impl Machine {
    fn pop(&mut self) -> Result<Value, String> {
        self.stack
            .pop()
            .ok_or_else(|| "stack underflow".to_string())
    }

    /// The values above the topmost mark, and the mark gone.
    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let m = self
            .stack
            .iter()
            .rposition(|v| *v == Value::Mark)
            .ok_or("no mark on the stack")?;
        let items = self.stack.split_off(m + 1);
        self.stack.pop();
        Ok(items)
    }

    fn top(&mut self) -> Result<&mut Value, String> {
        self.stack
            .last_mut()
            .ok_or_else(|| "stack underflow".to_string())
    }

    /// SETITEM (a key and a value) or SETITEMS (`many`: key-value pairs down to the mark) into the
    /// dict below them.
    fn set_items(&mut self, many: bool) -> Result<(), String> {
        let items = if many {
            self.pop_mark()?
        } else {
            let v = self.pop()?;
            vec![self.pop()?, v]
        };
        if items.len() % 2 != 0 {
            return Err("SETITEMS with an odd number of items".into());
        }
        let Ok(Value::Dict(d)) = self.top() else {
            return Err("SETITEM on a non-dict".into());
        };
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            d.push((k, v));
        }
        Ok(())
    }

    /// An opcode that works on the stack or the memo.
    fn apply(&mut self, op: u8, r: &mut Reader) -> Result<(), String> {
        match op {
            0x80 => drop(r.u8()?),    // PROTO
            0x95 => drop(r.take(8)?), // FRAME
            0x98 => {}                // READONLY_BUFFER: no effect on an in-band buffer
            0x97 => return Err("out-of-band buffers are not supported".into()),
            b't' => {
                let items = self.pop_mark()?;
                self.stack.push(Value::Tuple(items));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                if self.stack.len() < n {
                    return Err("stack underflow".into());
                }
                let items = self.stack.split_off(self.stack.len() - n);
                self.stack.push(Value::Tuple(items));
            }
            0x93 => {
                let name = self.pop()?;
                match (self.pop()?, name) {
                    (Value::Str(m), Value::Str(n)) => self.stack.push(Value::Global(m, n)),
                    _ => return Err("STACK_GLOBAL needs two strings".into()),
                }
            }
            b'Q' => {
                let pid = self.pop()?;
                self.stack.push(Value::Persistent(Box::new(pid)));
            }
            b'R' | 0x81 => {
                let args = self.pop()?;
                let callable = self.pop()?;
                self.stack.push(reduce(callable, args));
            }
            b'b' => {
                let st = self.pop()?;
                // state on a plain value (a state dict's `_metadata`) is not needed
                if let Value::Object { state, .. } = self.top()? {
                    *state = Some(Box::new(st));
                }
            }
            b'a' | b'e' => {
                let items = match op {
                    b'a' => vec![self.pop()?],
                    _ => self.pop_mark()?,
                };
                match self.top() {
                    Ok(Value::List(l)) => l.extend(items),
                    _ => return Err("APPEND to a non-list".into()),
                }
            }
            b's' | b'u' => self.set_items(op == b'u')?,
            b'q' | b'r' | b'p' | 0x94 => {
                let key = match op {
                    b'q' => r.le(1)?,
                    b'r' => r.le(4)?,
                    b'p' => r.line()?.parse().map_err(|_| "bad memo key")?,
                    _ => self.memo.len() as u64,
                };
                let top = self.top()?.clone();
                self.memo.insert(key, top);
            }
            b'h' | b'j' | b'g' => {
                let key = match op {
                    b'h' => r.le(1)?,
                    b'j' => r.le(4)?,
                    _ => r.line()?.parse().map_err(|_| "bad memo key")?,
                };
                let v = self.memo.get(&key).ok_or("unknown memo key")?.clone();
                self.stack.push(v);
            }
            b'0' => drop(self.pop()?),
            b'1' => drop(self.pop_mark()?),
            b'2' => {
                let top = self.top()?.clone();
                self.stack.push(top);
            }
            _ => {
                let at = r.pos - 1;
                return Err(format!("unsupported pickle opcode 0x{op:02x} at byte {at}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol2_dict_of_ints_and_list() {
        // pickle.dumps({b'labels': [1, 300, -2]}, protocol=2) as Python 2 would write it
        let mut p = vec![0x80, 2, b'}', b'q', 0, b'(', b'U', 6];
        p.extend_from_slice(b"labels");
        p.extend_from_slice(&[
            b'q', 1, b']', b'q', 2, b'(', b'K', 1, b'M', 44, 1, b'J', 0xfe, 0xff, 0xff, 0xff, b'e',
            b'u', b'.',
        ]);
        let v = load(&p).unwrap();
        assert_eq!(
            v.dict_get("labels").unwrap().int_list().unwrap(),
            vec![1, 300, -2]
        );
    }

    #[test]
    fn persistent_ids_and_ordered_dicts_stay_inert() {
        // what torch.save writes for {'w': tensor} (protocol 2), the storage's numel and the
        // tensor's size and stride shortened:
        // OrderedDict([('w', _rebuild_tensor_v2(pid, 0, (2,), (1,), False, OrderedDict()))])
        let mut p = vec![0x80, 2];
        p.extend_from_slice(b"ccollections\nOrderedDict\nq\x00)Rq\x01X\x01\x00\x00\x00w");
        p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage");
        p.extend_from_slice(b"ctorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x02tQ");
        p.extend_from_slice(b"K\x00K\x02\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRs.");
        let v = load(&p).unwrap();
        let Value::Object { callable, args, .. } = v.dict_get("w").unwrap() else {
            panic!("{v:?}")
        };
        assert_eq!(
            **callable,
            Value::Global("torch._utils".into(), "_rebuild_tensor_v2".into())
        );
        let Value::Tuple(a) = args.as_ref() else {
            panic!()
        };
        let Value::Persistent(pid) = &a[0] else {
            panic!("{:?}", a[0])
        };
        assert_eq!(
            **pid,
            Value::Tuple(vec![
                Value::Str("storage".into()),
                Value::Global("torch".into(), "FloatStorage".into()),
                Value::Str("0".into()),
                Value::Str("cpu".into()),
                Value::Int(2),
            ])
        );
        assert_eq!(a[2].int_list(), Some(vec![2]));
        assert_eq!(
            a[5],
            Value::Dict(Vec::new()),
            "backward hooks: an empty dict"
        );
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        for n in 0..6 {
            assert!(load(&[0x80, 2, b'}', b'(', b'T', 0xff][..n]).is_err());
        }
    }
}
