// Stands in for comfy-aimdo's aimdo.so: only its file name matters to the test.
extern "C" int fake_aimdo_marker() {
  return 1;
}
