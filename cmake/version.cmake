# The version is said once, in project(sockmsg VERSION ...): it gives the
# SONAME and file version (src/CMakeLists.txt), the pkg-config and CMake
# package versions (cmake/install.cmake), and the SM_VERSION_* macros of
# <sockmsg/version.h>, generated here into the build tree's include/ (which
# every target that uses the headers has on its include path) and installed
# with the other headers.
configure_file(${CMAKE_CURRENT_LIST_DIR}/version.h.in
  ${PROJECT_BINARY_DIR}/include/sockmsg/version.h @ONLY)
set(SM_GENERATED_INCLUDE ${PROJECT_BINARY_DIR}/include)

# The man page's title line says the version too (installed as is): a bump
# that forgets it fails here, naming it.
set(sm_man ${PROJECT_SOURCE_DIR}/docs/sockmsg.1)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${sm_man})
file(STRINGS ${sm_man} sm_th REGEX "^\\.TH ")
string(REPLACE "." "\\." sm_version_re "${PROJECT_VERSION}")
if(NOT sm_th MATCHES "\"sockmsg ${sm_version_re}\"")
  message(FATAL_ERROR "${sm_man}: '${sm_th}' does not say \"sockmsg ${PROJECT_VERSION}\", "
    "as project(sockmsg VERSION ${PROJECT_VERSION}) does: change both together")
endif()
