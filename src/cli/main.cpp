#include <cstdio>
#include <exception>

#include "commands.h"
#include "quasr/core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"quasr: quantize speech-recognition models and measure, on real speech, what each choice costs",
               "quasr"};
  app.set_version_flag("--version", std::string("quasr ") + QUASR_VERSION);
  app.require_subcommand(1);
  app.fallthrough(false);
  quasr::cli::register_info(app);
  quasr::cli::register_formats(app);
  quasr::cli::register_quantize(app);
  quasr::cli::register_transcribe(app);
  quasr::cli::register_export(app);
  quasr::cli::register_eval(app);
  quasr::cli::register_compare(app);
  quasr::cli::register_sweep(app);
  quasr::cli::register_calibrate(app);
  quasr::cli::register_sensitivity(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const quasr::Error& e) {
    std::fprintf(stderr, "quasr: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "quasr: unexpected error: %s\n", e.what());
    return 1;
  }
  return 0;
}
