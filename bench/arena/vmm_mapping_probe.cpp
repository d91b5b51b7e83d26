// Measures, on a real GPU, the driver costs that decide how the arena maps physical pages:
// whether cuMemSetAccess / cuMemUnmap scale with the number of physical handles or with the
// number of mappings, whether one cuMemUnmap may span several mappings, and what a sub-range
// unmap returns. Talks to the driver directly (it is a measuring tool, not part of the shim).
//
// Build and run on the GPU machine:
//   g++ -O2 -std=c++20 bench/arena/vmm_mapping_probe.cpp -I/usr/local/cuda/include
//       -L/usr/local/cuda/lib64/stubs -lcuda -o /tmp/probe && /tmp/probe
#include <cuda.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

void check(CUresult r, const char* what) {
  if (r != CUDA_SUCCESS) {
    const char* s = nullptr;
    cuGetErrorString(r, &s);
    std::fprintf(stderr, "%s failed: %d %s\n", what, static_cast<int>(r), s ? s : "?");
    std::exit(1);
  }
}

double now_us() {
  return std::chrono::duration<double, std::micro>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

CUmemAllocationProp g_prop{};
CUmemAccessDesc g_access{};
std::size_t g_gran = 0;

struct Layout {
  std::vector<CUmemGenericAllocationHandle> handles;
  std::size_t handle_size = 0;
};

Layout make_handles(std::size_t total, std::size_t handle_size) {
  Layout l;
  l.handle_size = handle_size;
  for (std::size_t done = 0; done < total; done += handle_size) {
    CUmemGenericAllocationHandle h = 0;
    check(cuMemCreate(&h, handle_size, &g_prop, 0), "cuMemCreate");
    l.handles.push_back(h);
  }
  return l;
}

void free_handles(Layout& l) {
  for (auto h : l.handles) check(cuMemRelease(h), "cuMemRelease");
  l.handles.clear();
}

struct Times {
  double map = 0, access = 0, unmap = 0;
};

// Maps every handle of `l` (whole: the driver maps only whole handles) one after the other
// behind va, grants access with one cuMemSetAccess over the range (or one per handle when
// access_each), then unmaps handle by handle (or with one call when whole_unmap).
Times map_cycle(CUdeviceptr va, const Layout& l, bool access_each, bool whole_unmap,
                CUresult* whole_unmap_status) {
  Times t;
  const std::size_t total = l.handle_size * l.handles.size();
  double t0 = now_us();
  std::size_t off = 0;
  for (auto h : l.handles) {
    check(cuMemMap(va + off, l.handle_size, 0, h, 0), "cuMemMap");
    off += l.handle_size;
  }
  double t1 = now_us();
  if (access_each) {
    for (std::size_t o = 0; o < total; o += l.handle_size)
      check(cuMemSetAccess(va + o, l.handle_size, &g_access, 1), "cuMemSetAccess each");
  } else {
    check(cuMemSetAccess(va, total, &g_access, 1), "cuMemSetAccess");
  }
  double t2 = now_us();
  CUresult whole = CUDA_ERROR_NOT_SUPPORTED;
  if (whole_unmap) whole = cuMemUnmap(va, total);
  if (whole != CUDA_SUCCESS) {
    for (std::size_t o = 0; o < total; o += l.handle_size)
      check(cuMemUnmap(va + o, l.handle_size), "unmap");
  }
  if (whole_unmap_status) *whole_unmap_status = whole;
  double t3 = now_us();
  t.map = t1 - t0;
  t.access = t2 - t1;
  t.unmap = t3 - t2;
  return t;
}

void layout_row(CUdeviceptr va, std::size_t handle_size, std::size_t count, int reps) {
  Layout l = make_handles(handle_size * count, handle_size);
  std::vector<double> m, a, ae, u, uw;
  CUresult whole = CUDA_SUCCESS;
  for (int r = 0; r < reps; ++r) {
    Times t = map_cycle(va, l, false, false, nullptr);
    m.push_back(t.map);
    a.push_back(t.access);
    u.push_back(t.unmap);
    Times e = map_cycle(va, l, true, true, &whole);
    ae.push_back(e.access);
    uw.push_back(e.unmap);
  }
  std::printf("| %5zu MiB | %5zu MiB x %4zu | %9.1f | %9.1f | %9.1f | %9.1f | %9.1f (%s) |\n",
              handle_size * count / kMiB, handle_size / kMiB, count, median(m), median(a),
              median(ae), median(u), median(uw), whole == CUDA_SUCCESS ? "ok" : "refused");
  free_handles(l);
}

}  // namespace

int main() {
  check(cuInit(0), "cuInit");
  CUdevice dev = 0;
  check(cuDeviceGet(&dev, 0), "cuDeviceGet");
  CUcontext ctx = nullptr;
  check(cuDevicePrimaryCtxRetain(&ctx, dev), "retain");
  check(cuCtxSetCurrent(ctx), "setcurrent");

  g_prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  g_prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  g_prop.location.id = dev;
  g_access.location = g_prop.location;
  g_access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  check(cuMemGetAllocationGranularity(&g_gran, &g_prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM),
        "granularity");
  std::printf("granularity %zu MiB\n", g_gran / kMiB);

  const std::size_t va_size = std::size_t{4} << 30;
  CUdeviceptr va = 0;
  check(cuMemAddressReserve(&va, va_size, 0, 0, 0), "reserve");

  std::printf("\n## cuMemCreate + cuMemRelease (median of 9, us)\n");
  for (std::size_t sz : {2 * kMiB, 64 * kMiB, 256 * kMiB, 1024 * kMiB}) {
    std::vector<double> c, rl;
    for (int r = 0; r < 9; ++r) {
      CUmemGenericAllocationHandle h = 0;
      double t0 = now_us();
      check(cuMemCreate(&h, sz, &g_prop, 0), "create");
      double t1 = now_us();
      check(cuMemRelease(h), "release");
      double t2 = now_us();
      c.push_back(t1 - t0);
      rl.push_back(t2 - t1);
    }
    std::printf("%5zu MiB: create %.1f release %.1f\n", sz / kMiB, median(c), median(rl));
  }

  std::printf("\n## map / setAccess / unmap of a range of whole-handle mappings (median, us)\n");
  std::printf(
      "| range | handles | map all | setAccess once | setAccess per handle | unmap each | "
      "unmap one call |\n");
  std::printf("| --- | --- | --- | --- | --- | --- | --- |\n");
  layout_row(va, 2 * kMiB, 1, 9);
  layout_row(va, 2 * kMiB, 8, 9);
  layout_row(va, 2 * kMiB, 32, 7);
  layout_row(va, 2 * kMiB, 512, 3);
  layout_row(va, 16 * kMiB, 1, 9);
  layout_row(va, 16 * kMiB, 64, 5);
  layout_row(va, 32 * kMiB, 32, 5);
  layout_row(va, 64 * kMiB, 1, 9);
  layout_row(va, 64 * kMiB, 16, 5);
  layout_row(va, 256 * kMiB, 1, 7);
  layout_row(va, 256 * kMiB, 4, 5);
  layout_row(va, 1024 * kMiB, 1, 5);
  layout_row(va, 2048 * kMiB, 1, 3);

  std::printf("\n## contract checks\n");
  {
    Layout l = make_handles(64 * kMiB, 64 * kMiB);
    check(cuMemMap(va, 64 * kMiB, 0, l.handles[0], 0), "map");
    check(cuMemSetAccess(va, 64 * kMiB, &g_access, 1), "access");
    CUresult sub = cuMemUnmap(va, 2 * kMiB);
    std::printf("unmap of a 2 MiB sub-range of a 64 MiB mapping: %d\n", static_cast<int>(sub));
    check(cuMemUnmap(va, 64 * kMiB), "unmap whole");
    CUresult prefix = cuMemMap(va, 2 * kMiB, 0, l.handles[0], 0);
    std::printf("map of the first 2 MiB of a 64 MiB handle: %d\n", static_cast<int>(prefix));
    if (prefix == CUDA_SUCCESS) check(cuMemUnmap(va, 2 * kMiB), "unmap prefix");
    CUresult offset = cuMemMap(va, 2 * kMiB, 2 * kMiB, l.handles[0], 0);
    std::printf("map at offset 2 MiB of a 64 MiB handle: %d\n", static_cast<int>(offset));
    if (offset == CUDA_SUCCESS) check(cuMemUnmap(va, 2 * kMiB), "unmap offset");
    // Access granted on one mapping, then a second mapping added beside it.
    Layout two = make_handles(4 * kMiB, 2 * kMiB);
    check(cuMemMap(va, 2 * kMiB, 0, two.handles[0], 0), "map a");
    check(cuMemSetAccess(va, 2 * kMiB, &g_access, 1), "access a");
    check(cuMemMap(va + 2 * kMiB, 2 * kMiB, 0, two.handles[1], 0), "map b");
    CUresult again = cuMemSetAccess(va, 4 * kMiB, &g_access, 1);
    std::printf("setAccess over an accessible and a new mapping: %d\n", static_cast<int>(again));
    CUresult both = cuMemUnmap(va, 4 * kMiB);
    std::printf("one unmap over two mappings: %d\n", static_cast<int>(both));
    if (both != CUDA_SUCCESS) {
      check(cuMemUnmap(va, 2 * kMiB), "u1");
      check(cuMemUnmap(va + 2 * kMiB, 2 * kMiB), "u2");
    }
    free_handles(two);
    // The same physical page mapped at two addresses at once.
    Layout one = make_handles(2 * kMiB, 2 * kMiB);
    check(cuMemMap(va, 2 * kMiB, 0, one.handles[0], 0), "alias a");
    check(cuMemMap(va + 64 * kMiB, 2 * kMiB, 0, one.handles[0], 0), "alias b");
    check(cuMemSetAccess(va, 2 * kMiB, &g_access, 1), "alias acc a");
    check(cuMemSetAccess(va + 64 * kMiB, 2 * kMiB, &g_access, 1), "alias acc b");
    check(cuMemsetD32(va, 0x1234abcd, 2 * kMiB / 4), "memset");
    unsigned int seen = 0;
    check(cuMemcpyDtoH(&seen, va + 64 * kMiB + 1024, 4), "dtoh");
    std::printf("alias sees writes: %s\n", seen == 0x1234abcd ? "yes" : "no");
    check(cuMemUnmap(va, 2 * kMiB), "ua");
    check(cuMemUnmap(va + 64 * kMiB, 2 * kMiB), "ub");
    free_handles(one);
    free_handles(l);
  }

  std::printf("\n## events and sync (median of 1001, us)\n");
  {
    CUstream s = nullptr;
    check(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), "stream");
    CUevent e = nullptr;
    check(cuEventCreate(&e, CU_EVENT_DISABLE_TIMING), "event");
    std::vector<double> rec, q, sync, ctxsync, create;
    for (int i = 0; i < 1001; ++i) {
      double t0 = now_us();
      check(cuEventRecord(e, s), "record");
      double t1 = now_us();
      CUresult qr = cuEventQuery(e);
      double t2 = now_us();
      (void)qr;
      check(cuEventSynchronize(e), "esync");
      double t3 = now_us();
      check(cuCtxSynchronize(), "ctxsync");
      double t4 = now_us();
      CUevent e2 = nullptr;
      check(cuEventCreate(&e2, CU_EVENT_DISABLE_TIMING), "event2");
      check(cuEventDestroy(e2), "destroy2");
      double t5 = now_us();
      rec.push_back(t1 - t0);
      q.push_back(t2 - t1);
      sync.push_back(t3 - t2);
      ctxsync.push_back(t4 - t3);
      create.push_back(t5 - t4);
    }
    std::printf("record %.2f query %.2f eventSync %.2f ctxSync(idle) %.2f create+destroy %.2f\n",
                median(rec), median(q), median(sync), median(ctxsync), median(create));
    check(cuEventDestroy(e), "destroy");
    check(cuStreamDestroy(s), "sdestroy");
  }

  std::size_t free_b = 0, total_b = 0;
  {
    std::vector<double> mi;
    for (int i = 0; i < 101; ++i) {
      double t0 = now_us();
      check(cuMemGetInfo(&free_b, &total_b), "meminfo");
      mi.push_back(now_us() - t0);
    }
    std::printf("cuMemGetInfo %.2f us\n", median(mi));
  }
  std::printf("\nmem free %zu MiB total %zu MiB\n", free_b / kMiB, total_b / kMiB);
  check(cuMemAddressFree(va, va_size), "addrfree");
  return 0;
}
