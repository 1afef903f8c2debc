//go:build cgo && !purego

package gemm

/*
#cgo LDFLAGS: -ldnnl -lgomp
#include <stdint.h>
#include <stdlib.h>
#include <omp.h>
#include <immintrin.h>
#include <oneapi/dnnl/dnnl.h>

static dnnl_engine_t tl_engine;

static int tl_init(void) {
	if (dnnl_engine_create(&tl_engine, dnnl_cpu, 0) != dnnl_success) return -1;
	return 0;
}

// tl_bf16 reports whether oneDNN runs bf16 matmul natively here
// (avx512_core_bf16: AVX512_BF16 with the AVX-512 core and VNNI it implies).
static int tl_bf16(void) {
	unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
	unsigned want = (unsigned)dnnl_cpu_isa_avx512_core_bf16;
	return (isa & want) == want;
}

static void tl_version(int *v) {
	const dnnl_version_t *ver = dnnl_version();
	v[0] = ver->major; v[1] = ver->minor; v[2] = ver->patch;
}

// tl_to_bf16 rounds n floats to bf16, to nearest even (the instruction
// PyTorch's and oneDNN's own conversions use). Called only where tl_bf16
// said yes, so the target attribute is safe.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void tl_to_bf16(const float *src, uint16_t *dst, int64_t n) {
	int64_t i = 0;
	for (; i + 16 <= n; i += 16) {
		__m512 v = _mm512_loadu_ps(src + i);
		__m256bh h = _mm512_cvtneps_pbh(v);
		_mm256_storeu_si256((__m256i *)(dst + i), (__m256i)h);
	}
	if (i < n) {
		__mmask16 k = (__mmask16)((1u << (n - i)) - 1);
		__m512 v = _mm512_maskz_loadu_ps(k, src + i);
		__m256bh h = _mm512_cvtneps_pbh(v);
		_mm256_mask_storeu_epi16(dst + i, k, (__m256i)h);
	}
}

// tl_pack_bf16 rounds a rows×cols block of src (row stride ld) to bf16
// into dst, packed (row stride cols): only the elements the product reads
// are converted, however wide the rows they sit in.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void tl_pack_bf16(const float *src, int64_t ld, int64_t rows, int64_t cols, uint16_t *dst) {
	if (ld == cols) {
		tl_to_bf16(src, dst, rows * cols);
		return;
	}
	for (int64_t r = 0; r < rows; r++) tl_to_bf16(src + r * ld, dst + r * cols, cols);
}

// tl_make creates the matmul primitive for one shape: C[m,n] = alpha·A·B +
// beta·C with A [m,k] and B [k,n] in bf16 at the given strides (a
// transposed operand is a swapped pair of strides) and C in f32.
static dnnl_primitive_t tl_make(int64_t m, int64_t n, int64_t k,
		int64_t as0, int64_t as1, int64_t bs0, int64_t bs1, int64_t ldc,
		float alpha, float beta) {
	omp_set_num_threads(1);
	dnnl_memory_desc_t amd, bmd, cmd;
	dnnl_dims_t ad = {m, k}, ast = {as0, as1};
	dnnl_dims_t bd = {k, n}, bst = {bs0, bs1};
	dnnl_dims_t cd = {m, n}, cst = {ldc, 1};
	if (dnnl_memory_desc_init_by_strides(&amd, 2, ad, dnnl_bf16, ast) != dnnl_success) return NULL;
	if (dnnl_memory_desc_init_by_strides(&bmd, 2, bd, dnnl_bf16, bst) != dnnl_success) return NULL;
	if (dnnl_memory_desc_init_by_strides(&cmd, 2, cd, dnnl_f32, cst) != dnnl_success) return NULL;
	dnnl_matmul_desc_t md;
	if (dnnl_matmul_desc_init(&md, &amd, &bmd, NULL, &cmd) != dnnl_success) return NULL;
	dnnl_primitive_attr_t attr;
	if (dnnl_primitive_attr_create(&attr) != dnnl_success) return NULL;
	dnnl_post_ops_t po = NULL;
	// A user scratchpad, passed per execution: the library's own is shared
	// by the primitive, so two goroutines running one shape at once (Split)
	// overwrote each other's intermediate sums.
	int ok = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success;
	if (ok && alpha != 1.0f && dnnl_primitive_attr_set_output_scales(attr, 1, 0, &alpha) != dnnl_success) ok = 0;
	if (ok && beta != 0.0f) {
		ok = dnnl_post_ops_create(&po) == dnnl_success &&
			dnnl_post_ops_append_sum(po, beta) == dnnl_success &&
			dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success;
	}
	dnnl_primitive_desc_t pd = NULL;
	dnnl_primitive_t prim = NULL;
	if (ok && dnnl_primitive_desc_create(&pd, &md, attr, tl_engine, NULL) == dnnl_success) {
		if (dnnl_primitive_create(&prim, pd) != dnnl_success) prim = NULL;
		dnnl_primitive_desc_destroy(pd);
	}
	if (po) dnnl_post_ops_destroy(po);
	dnnl_primitive_attr_destroy(attr);
	return prim;
}

// tl_run packs A (ar×ac stored at row stride lda) and B (br×bc, ldb) into
// bf16 and runs prim on one thread. It returns a dnnl status (0: success).
static int tl_run(dnnl_primitive_t prim, const float *a, int64_t lda, int64_t ar, int64_t ac,
		const float *b, int64_t ldb, int64_t br, int64_t bc, float *c, uint16_t *abf, uint16_t *bbf) {
	omp_set_num_threads(1);
	tl_pack_bf16(a, lda, ar, ac, abf);
	tl_pack_bf16(b, ldb, br, bc, bbf);
	const_dnnl_primitive_desc_t pd;
	dnnl_status_t st = dnnl_primitive_get_primitive_desc(prim, &pd);
	if (st != dnnl_success) return st;
	const dnnl_memory_desc_t *amd = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
	const dnnl_memory_desc_t *bmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
	const dnnl_memory_desc_t *cmd = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
	const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
	size_t ssize = smd ? dnnl_memory_desc_get_size(smd) : 0;
	void *sbuf = NULL;
	dnnl_memory_t am = NULL, bm = NULL, cm = NULL, sm = NULL;
	dnnl_stream_t s = NULL;
	int nargs = 3;
	if ((st = dnnl_memory_create(&am, amd, tl_engine, abf)) != dnnl_success) goto out;
	if ((st = dnnl_memory_create(&bm, bmd, tl_engine, bbf)) != dnnl_success) goto out;
	if ((st = dnnl_memory_create(&cm, cmd, tl_engine, c)) != dnnl_success) goto out;
	if ((st = dnnl_stream_create(&s, tl_engine, dnnl_stream_default_flags)) != dnnl_success) goto out;
	if (ssize > 0) {
		sbuf = malloc(ssize);
		if (!sbuf) { st = dnnl_out_of_memory; goto out; }
		if ((st = dnnl_memory_create(&sm, smd, tl_engine, sbuf)) != dnnl_success) goto out;
		nargs = 4;
	}
	dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}, {DNNL_ARG_SCRATCHPAD, sm}};
	if ((st = dnnl_primitive_execute(prim, s, nargs, args)) != dnnl_success) goto out;
	st = dnnl_stream_wait(s);
out:
	if (s) dnnl_stream_destroy(s);
	if (am) dnnl_memory_destroy(am);
	if (bm) dnnl_memory_destroy(bm);
	if (cm) dnnl_memory_destroy(cm);
	if (sm) dnnl_memory_destroy(sm);
	free(sbuf);
	return st;
}
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

// OneDNN computes Sgemm with bf16 inputs and fp32 accumulation through
// oneDNN's matmul primitive (Debian's libdnnl, 2.6.3): A and B are rounded
// to bf16 (nearest even) on each call into packed copies (only the
// elements the product reads: a head's columns of a wide q|k|v row are
// converted, not the row), products are exact in fp32 and
// summed in fp32, C stays fp32. It is what torch.autocast("cpu",
// dtype=torch.bfloat16) does to a matrix product on the same library. Dgemm
// stays float64 on Fallback: the float64 path is the engine's exact
// reference and is never lowered.
//
// Matrix-vector products (m == 1 or n == 1: a decode step's attention for
// one token, a single sequence's projections) stay fp32 on Fallback: they
// read each matrix element once, so rounding it to bf16 first costs more
// than it saves.
//
// Each call runs on one thread (Split spreads a product over goroutines).
// Primitives are built once per shape and kept; oneDNN's JIT kernels then
// sum every element in an order fixed by the shape, so results do not
// depend on scheduling. Use NewOneDNN, which reports whether the CPU runs
// bf16 natively.
type OneDNN struct {
	Fallback GEMM
	cache    *primCache
}

var _ GEMM = OneDNN{}

type primKey struct {
	m, n, k, as0, as1, bs0, bs1, ldc int
	alpha, beta                      float32
}

// primCache holds one primitive per shape. It is bounded: past maxPrims
// shapes a primitive is built and destroyed per call instead.
type primCache struct {
	mu sync.Mutex
	m  map[primKey]C.dnnl_primitive_t
}

const maxPrims = 4096

var onednn = sync.OnceValues(func() (*primCache, error) {
	if C.tl_init() != 0 {
		return nil, fmt.Errorf("gemm: oneDNN: no CPU engine")
	}
	if C.tl_bf16() == 0 {
		return nil, fmt.Errorf("gemm: oneDNN: CPU lacks AVX512_BF16 (effective ISA %#x)", int(C.dnnl_get_effective_cpu_isa()))
	}
	return &primCache{m: map[primKey]C.dnnl_primitive_t{}}, nil
})

// NewOneDNN returns the bf16 GEMM, or an error saying why this machine
// cannot run it natively (no AVX512_BF16, or no oneDNN CPU engine).
func NewOneDNN() (OneDNN, error) {
	c, err := onednn()
	if err != nil {
		return OneDNN{}, err
	}
	return OneDNN{Fallback: NewOpenBLAS(1), cache: c}, nil
}

// bf16Info names the bf16 backend for Info: the oneDNN version and whether
// the CPU runs it, so engine versions differ where bf16 means different
// arithmetic (or falls back to fp32).
func bf16Info() string {
	var v [3]C.int
	C.tl_version(&v[0])
	if _, err := onednn(); err != nil {
		return fmt.Sprintf("bf16=fp32 (onednn %d.%d.%d, no avx512_bf16)", v[0], v[1], v[2])
	}
	return fmt.Sprintf("bf16=onednn %d.%d.%d matmul (avx512_core_bf16, fp32 accumulation)", v[0], v[1], v[2])
}

// Name implements GEMM.
func (OneDNN) Name() string { return "onednn-bf16" }

func (p *primCache) get(key primKey) (C.dnnl_primitive_t, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if prim, ok := p.m[key]; ok {
		return prim, true
	}
	prim := C.tl_make(C.int64_t(key.m), C.int64_t(key.n), C.int64_t(key.k), C.int64_t(key.as0), C.int64_t(key.as1),
		C.int64_t(key.bs0), C.int64_t(key.bs1), C.int64_t(key.ldc), C.float(key.alpha), C.float(key.beta))
	if prim == nil {
		panic(fmt.Sprintf("gemm: oneDNN could not build a bf16 matmul for %+v", key))
	}
	if len(p.m) >= maxPrims {
		return prim, false
	}
	p.m[key] = prim
	return prim, true
}

// Sgemm implements GEMM.
func (o OneDNN) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if !work(transA, transB, m, n, k, a, lda, b, ldb, beta, c, ldc) {
		return
	}
	if m == 1 || n == 1 {
		o.Fallback.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	// The packed copies: A is stored ar×ac, B br×bc, each at row stride
	// its column count; a transposed operand swaps its logical strides.
	ar, ac, br, bc := m, k, k, n
	key := primKey{m: m, n: n, k: k, as0: k, as1: 1, bs0: n, bs1: 1, ldc: ldc, alpha: alpha, beta: beta}
	if transA {
		ar, ac = k, m
		key.as0, key.as1 = 1, m
	}
	if transB {
		br, bc = n, k
		key.bs0, key.bs1 = 1, k
	}
	na, nb := ar*ac, br*bc
	prim, keep := o.cache.get(key)
	if !keep {
		defer C.dnnl_primitive_destroy(prim)
	}
	bufs := bf16Bufs.Get().(*[2][]uint16)
	defer bf16Bufs.Put(bufs)
	abf, bbf := growU16(&bufs[0], na), growU16(&bufs[1], nb)
	st := C.tl_run(prim, (*C.float)(unsafe.Pointer(&a[0])), C.int64_t(lda), C.int64_t(ar), C.int64_t(ac),
		(*C.float)(unsafe.Pointer(&b[0])), C.int64_t(ldb), C.int64_t(br), C.int64_t(bc),
		(*C.float)(unsafe.Pointer(&c[0])), (*C.uint16_t)(unsafe.Pointer(&abf[0])), (*C.uint16_t)(unsafe.Pointer(&bbf[0])))
	if st != 0 {
		panic(fmt.Sprintf("gemm: oneDNN bf16 matmul failed with status %d for %+v", int(st), key))
	}
}

// bf16Bufs holds the bf16 copies of A and B between calls: allocating
// them per call (fresh, zeroed, page-faulted memory) cost as much as the
// product itself for the engine's shapes.
var bf16Bufs = sync.Pool{New: func() any { return new([2][]uint16) }}

func growU16(b *[]uint16, n int) []uint16 {
	if cap(*b) < n {
		*b = make([]uint16, n)
	}
	return (*b)[:n]
}

// Dgemm implements GEMM on Fallback.
func (o OneDNN) Dgemm(transA, transB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	o.Fallback.Dgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
