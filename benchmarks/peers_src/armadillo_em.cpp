// Armadillo's EM (gmm_diag / gmm_full, OpenMP) for benchmarks/peers.py.
//
// Usage: armadillo_em DIR FP KIND N D K
//   DIR holds X.bin (N x D rows, C order = D x N column-major), w.bin (K),
//   mu.bin (K x D), cov.bin (K x D, or K x D x D for full), raw values of type FP
//   ("float" or "double"); KIND is "diag" or "full". Then, per line on stdin, an
//   iteration count m: runs m EM iterations from the start (no k-means), writes
//   out-w.bin, out-mu.bin, out-cov.bin to DIR in the same layout and prints the
//   seconds taken by learn() on one line.
#include <armadillo>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

using namespace arma;

template <typename eT>
static Mat<eT> load_raw(const std::string& path, uword rows, uword cols) {
  Mat<eT> m(rows, cols);
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f || std::fread(m.memptr(), sizeof(eT), m.n_elem, f) != m.n_elem) {
    std::cerr << "cannot read " << path << std::endl;
    std::exit(2);
  }
  std::fclose(f);
  return m;
}

template <typename eT>
static void save_raw(const std::string& path, const eT* p, uword n) {
  FILE* f = std::fopen(path.c_str(), "wb");
  std::fwrite(p, sizeof(eT), n, f);
  std::fclose(f);
}

template <typename eT, typename Model>
static void serve(const std::string& dir, bool full, uword n, uword d, uword k) {
  Mat<eT> X = load_raw<eT>(dir + "/X.bin", d, n);
  Row<eT> w = load_raw<eT>(dir + "/w.bin", 1, k);
  Mat<eT> mu = load_raw<eT>(dir + "/mu.bin", d, k);
  Mat<eT> cov_flat = load_raw<eT>(dir + "/cov.bin", full ? d * d : d, k);
  int m;
  while (std::cin >> m) {
    Model model;
    if constexpr (std::is_same_v<Model, gmm_priv::gmm_full<eT>>) {
      Cube<eT> fcovs(d, d, k);
      for (uword c = 0; c < k; ++c)
        fcovs.slice(c) = reshape(cov_flat.col(c), d, d);
      model.set_params(mu, fcovs, w);
    } else {
      model.set_params(mu, cov_flat, w);
    }
    auto t0 = std::chrono::steady_clock::now();
    model.learn(X, k, eucl_dist, keep_existing, 0, m, eT(0), false);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    save_raw(dir + "/out-w.bin", model.hefts.memptr(), k);
    save_raw(dir + "/out-mu.bin", model.means.memptr(), d * k);
    if constexpr (std::is_same_v<Model, gmm_priv::gmm_full<eT>>) {
      save_raw(dir + "/out-cov.bin", model.fcovs.memptr(), d * d * k);
    } else {
      save_raw(dir + "/out-cov.bin", model.dcovs.memptr(), d * k);
    }
    std::printf("%.9f\n", s);
    std::fflush(stdout);
  }
}

int main(int argc, char** argv) {
  if (argc != 7) {
    std::cerr << "usage: armadillo_em DIR FP KIND N D K" << std::endl;
    return 2;
  }
  std::string dir = argv[1], fp = argv[2], kind = argv[3];
  uword n = std::stoul(argv[4]), d = std::stoul(argv[5]), k = std::stoul(argv[6]);
  bool full = kind == "full";
  if (fp == "float") {
    if (full) serve<float, gmm_priv::gmm_full<float>>(dir, true, n, d, k);
    else serve<float, gmm_priv::gmm_diag<float>>(dir, false, n, d, k);
  } else {
    if (full) serve<double, gmm_priv::gmm_full<double>>(dir, true, n, d, k);
    else serve<double, gmm_priv::gmm_diag<double>>(dir, false, n, d, k);
  }
  return 0;
}
