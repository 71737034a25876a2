// A volume's lower pyramid levels have fewer planes than level 0 (each level that halves z halves the
// plane index: OME-NGFF scale transforms say so), while viv and the label overlays ask every level for
// level 0's plane. Each such level is wrapped so that it is asked for the plane that holds level 0's.
export function planesPerLevel(levels) {
  const zAxis = levels[0].labels.indexOf('z');
  if (zAxis < 0) return levels;
  const depth = levels[0].shape[zAxis];
  return levels.map((level) => {
    const planes = level.shape[zAxis];
    if (planes === depth) return level;
    const factor = 2 ** Math.round(Math.log2(depth / planes));
    const inLevel = (selection) => ({ ...selection, z: Math.min(Math.floor(selection.z / factor), planes - 1) });
    return new Proxy(level, {
      get(target, name) {
        if (name === 'getTile' || name === 'getRaster') {
          return (request) => target[name]({ ...request, selection: inLevel(request.selection) });
        }
        const value = Reflect.get(target, name);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  });
}
