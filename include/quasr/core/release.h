#pragma once
// Frees a vector's storage now. `v = {}` does not: it picks operator=(initializer_list), which clears the vector
// but keeps its capacity, so the memory stays allocated until the vector is destroyed.
#include <vector>

namespace quasr {

template <class T, class A>
void release(std::vector<T, A>& v) {
  std::vector<T, A>().swap(v);
}

}  // namespace quasr
