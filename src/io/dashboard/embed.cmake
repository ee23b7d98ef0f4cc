# Turns the dashboard's static files into one C file of byte arrays (run by src/io/CMakeLists.txt
# at build time: cmake -DOUT=<file.c> -DINPUTS="<name>=<path>,..." -P embed.cmake).
# Each <name> becomes `const unsigned char <name>[]` (NUL-terminated) and `const size_t
# <name>_len` (without the NUL).
set(text "/* Generated from src/io/dashboard/ by embed.cmake: do not edit. */\n#include <stddef.h>\n")
string(REPLACE "," ";" inputs "${INPUTS}")
foreach(pair ${inputs})
    string(REPLACE "=" ";" parts "${pair}")
    list(GET parts 0 name)
    list(GET parts 1 path)
    file(READ "${path}" hex HEX)
    string(LENGTH "${hex}" hexlen)
    math(EXPR len "${hexlen} / 2")
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
    string(APPEND text "const unsigned char ${name}[] = {${bytes}0x00};\n")
    string(APPEND text "const size_t ${name}_len = ${len};\n")
endforeach()
file(WRITE "${OUT}.tmp" "${text}")
file(RENAME "${OUT}.tmp" "${OUT}")
