#pragma once
// Errors in quasr are exceptions carrying a message that names the problem (the tensor, the file, the option).
// Library code never exits the process; the CLI catches quasr::Error and prints it. Broken internal invariants
// (bugs, not bad input) use QUASR_ASSERT, which aborts with the location.
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace quasr {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Bad user input: options, recipes, group sizes, tensors with NaN.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// Bad or unreadable files: truncated model.bin, corrupt container, audio that cannot be decoded.
class IoError : public Error {
 public:
  using Error::Error;
};

}  // namespace quasr

#define QUASR_ASSERT(cond)                                                                      \
  do {                                                                                          \
    if (!(cond)) {                                                                              \
      std::fprintf(stderr, "quasr: internal error: %s at %s:%d\n", #cond, __FILE__, __LINE__);  \
      std::abort();                                                                             \
    }                                                                                           \
  } while (0)
